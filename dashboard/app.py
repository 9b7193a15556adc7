"""LabelPulse dashboard: `labelpulse dashboard`, or `streamlit run dashboard/app.py`.

The sidebar holds the filters, kept in the URL so a link reproduces the view; each page in
dashboard/views/ reads them and refreshes its own body on an interval.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from dashboard.auth import EVERYONE, SignInGuard, SlowDown, Viewer
from dashboard.data import VIEWER_KEY, fetch, settings
from dashboard.filters import QUICK_RANGES, RANGE_LABELS, REFRESH_CHOICES, SOURCES, ViewState, from_params, to_params
from dashboard.markdown import literal
from dashboard.page import STATE_KEY
from schema import queries
from schema.client import ClickHouseUnavailable


def options(query: queries.Query, column: str) -> list[str]:
    try:
        return [str(value) for value in fetch(query)[column]]
    except ClickHouseUnavailable:  # access.scoped.SchemaMissing is one too
        return []  # the page shows the banner


def sidebar() -> ViewState:
    requested = from_params(st.query_params.get_all, datetime.now(UTC), settings().refresh_s)
    for problem in requested.problems:
        st.sidebar.warning(f"Link ignored in part: {literal(problem)}")
    sidebar = st.sidebar
    sidebar.title("LabelPulse")
    keys = list(RANGE_LABELS)
    range_key = sidebar.selectbox(
        "Time range", keys, index=keys.index(requested.range_key), format_func=RANGE_LABELS.__getitem__
    )
    start, end = requested.filters.start, requested.filters.end
    if range_key == "custom":
        if requested.range_key != "custom":
            start, end = end - timedelta(days=1), end
        left, right = sidebar.columns(2)
        start_date = left.date_input("From (UTC)", start.date())
        end_date = right.date_input("To (UTC)", end.date())
        start_time = left.time_input("at", start.time().replace(second=0, microsecond=0), key="from_time")
        end_time = right.time_input("at", end.time().replace(second=0, microsecond=0), key="to_time")
        start = datetime.combine(start_date, start_time or time(), UTC)
        end = datetime.combine(end_date, end_time or time(), UTC)
        if start >= end:
            sidebar.error("“From” must be before “To”; showing the last day.")
            start, end = end - timedelta(days=1), end
    else:
        end = datetime.now(UTC)
        start = end - QUICK_RANGES[range_key]

    window = queries.Filters(start, end)
    known_projects = options(queries.project_names(), "project_id")
    unknown_projects(requested.filters.projects, known_projects)
    projects = _multiselect("Projects", known_projects, requested.filters.projects)
    annotators = _multiselect(
        "Annotators", options(queries.annotator_names(window), "annotator_id"), requested.filters.annotators
    )
    labels = _multiselect("Label classes", options(queries.label_names(window), "label"), requested.filters.labels)
    sources = _multiselect("Source", list(SOURCES), requested.filters.sources)
    refresh_choices = sorted({*REFRESH_CHOICES, requested.refresh_s})  # a link may ask for any interval
    refresh_s = sidebar.selectbox(
        "Refresh",
        refresh_choices,
        index=refresh_choices.index(requested.refresh_s),
        format_func=lambda s: "Paused" if s == 0 else f"Every {s} s",
        help="How often the page reloads its numbers. Filters and scroll position stay as they are.",
    )
    state = ViewState(queries.Filters(start, end, projects, annotators, labels, sources), range_key, refresh_s)
    params = to_params(state)
    wanted = {key: value if isinstance(value, list) else [value] for key, value in params.items()}
    if {key: st.query_params.get_all(key) for key in st.query_params} != wanted:  # the URL keeps what is shown
        st.query_params.from_dict(params)
    return state


def unknown_projects(asked: tuple[str, ...], known: list[str]) -> None:
    """Warn about projects a link names that have never sent an event (a typo, or one not started yet).
    They stay chosen, so the link still works once that project's data arrives."""
    unknown = [project for project in asked if project not in known]
    if not unknown or not known:  # nothing known: an empty database or no ClickHouse, said on the page
        return
    named = ", ".join(literal(project) for project in unknown)
    st.sidebar.warning(
        f"No data for project {named} from the link: nothing will show for it. "
        f"Projects with data: {', '.join(literal(project) for project in known[:20])}"
        f"{' …' if len(known) > 20 else ''}."
    )


def _multiselect(label: str, choices: list[str], chosen: tuple[str, ...]) -> tuple[str, ...]:
    # Values from a link stay selectable even when the range holds no data for them.
    merged = list(dict.fromkeys([*choices, *chosen]))
    picked = st.sidebar.multiselect(label, merged, default=list(chosen), placeholder="All")
    return tuple(picked)


def sign_in() -> Viewer:
    """The signed-in viewer; shows the sign-in (and stops the page) until there is one."""
    config = settings()
    if config.auth == "none":
        return EVERYONE
    if config.auth == "oidc":
        if not st.user.is_logged_in:
            st.title("LabelPulse")
            st.button("Sign in", on_click=st.login, type="primary")
            st.stop()
        email = str(st.user.get("email") or "")
        user = config.users.get(email)
        if user is None:
            who = literal(email) if email else "This account"
            st.error(f"**{who} may not see this dashboard.** Ask to be added to its users file.")
            st.button("Sign out", on_click=st.logout)
            st.stop()
        return Viewer(user.name, user.projects)
    signed_in: Viewer | None = st.session_state.get(VIEWER_KEY)
    if signed_in is not None and signed_in is not EVERYONE:
        return signed_in
    st.title("LabelPulse")
    with st.form("sign-in"):
        name = st.text_input("User")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        outcome = sign_in_guard().sign_in(name, password, client=st.context.ip_address or "unknown")
        if isinstance(outcome, Viewer):
            st.session_state[VIEWER_KEY] = outcome
            st.rerun()
        elif isinstance(outcome, SlowDown):
            st.error(f"Too many failed sign-ins for this user or from this address. Try again in {outcome.wait_s} s.")
        else:
            st.error("Unknown user or wrong password.")
    st.stop()


@st.cache_resource
def sign_in_guard() -> SignInGuard:
    """One per dashboard process: failed sign-ins count across all browser sessions."""
    return SignInGuard(settings().users)


def sign_out() -> None:
    if settings().auth == "oidc":
        st.logout()
    st.session_state.pop(VIEWER_KEY, None)


# An emoji: a :material/…: page icon is fetched from the internet, so offline the tab had none.
st.set_page_config(page_title="LabelPulse", page_icon="📈", layout="wide")
st.session_state[VIEWER_KEY] = sign_in()
if st.session_state[VIEWER_KEY] is not EVERYONE:
    viewer = st.session_state[VIEWER_KEY]
    scope = "all projects" if viewer.projects is None else ", ".join(viewer.projects)
    st.sidebar.caption(f"Signed in as **{viewer.name}** · {scope}")
    st.sidebar.button("Sign out", on_click=sign_out)
st.session_state[STATE_KEY] = sidebar()
st.navigation(
    [
        st.Page("views/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("views/project.py", title="Project", icon=":material/folder_open:"),
        st.Page("views/annotators.py", title="Annotators", icon=":material/groups:"),
        st.Page("views/pipeline.py", title="Pipeline", icon=":material/monitor_heart:"),
        st.Page("views/alerts.py", title="Alerts", icon=":material/notifications_active:"),
    ]
).run()
