"""Who may get in, and what they may do: the ClickHouse roles, users and row policies of the access
file (`policy`, enforced by a ClickHouse server and by the embedded one), and the slowing down of
password guessing shared by the embedded ClickHouse and the dashboard's sign-in (`throttle`)."""
