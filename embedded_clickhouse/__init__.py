"""The embedded ClickHouse: one process owns a chDB data directory and serves ClickHouse's own
HTTP interface, so every other part of LabelPulse uses unmodified clickhouse-connect.

Only one process may open a chDB data directory, hence this server. It implements the parts
of the HTTP protocol clients rely on:

- the query in `?query=`, in the POST body, or begun in one and continued in the other;
  `multipart/form-data` bodies; settings, `database`, `default_format`, `query_id` and
  `param_<name>` values for `{name:Type}` placeholders as URL parameters;
- `INSERT … FORMAT <fmt>` with the data in the body (binary formats included), compressed
  request bodies (`Content-Encoding`: lz4, zstd, gzip, deflate, br) and compressed responses
  when `enable_http_compression=1`;
- sessions (`session_id`) with their own settings and temporary tables;
- results streamed block by block as chDB produces them in the row formats that allow it, and
  as the one document ClickHouse writes for the whole result in every other format;
- errors as ClickHouse sends them: the HTTP status ClickHouse maps the code to,
  `X-ClickHouse-Exception-Code`, and a `Code: N. DB::Exception: …` body — or, once a stream
  has started, the tagged `__exception__` block clients look for;
- user and password (basic auth, `X-ClickHouse-User`/`Key` headers, or URL parameters).

Modules: `settings` (what the server is told), `protocol` (HTTP requests and responses),
`auth` (who is asking), `origins` (browser requests from other sites), `guard` (what an access
file's user may run, by role), `engine` (chDB and running statements), `sessions` (HTTP sessions),
`codecs` (compressed bodies), `errors` (errors as ClickHouse sends them), `server` (the whole),
`service` (`labelpulse clickhouse`: serve until stopped).
"""

from embedded_clickhouse.errors import ClickHouseError
from embedded_clickhouse.server import ClickHouseHTTPServer, serve
from embedded_clickhouse.settings import ServerSettings

__all__ = ["ClickHouseError", "ClickHouseHTTPServer", "ServerSettings", "serve"]
