"""Figures: DataFrame in, Plotly figure out, one look everywhere.

Backgrounds are transparent and text takes Streamlit's theme colour, so the same figure reads
in light and dark mode; every axis has a title with its unit, and hover texts say what the
number is.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

# Colour-blind-safe (Okabe-Ito), distinguishable in light and dark mode.
COLORWAY = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"]
LAYOUT = go.Layout(
    colorway=COLORWAY,
    paper_bgcolor="rgba(0,0,0,0)",
    plot_bgcolor="rgba(0,0,0,0)",
    margin={"l": 10, "r": 10, "t": 72, "b": 10},
    height=320,
    # Title on top, legend between it and the plot: long legends never cover the title.
    legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
    hoverlabel={"namelength": -1},
    xaxis={"gridcolor": "rgba(128,128,128,0.2)", "automargin": True},
    yaxis={"gridcolor": "rgba(128,128,128,0.2)", "rangemode": "tozero", "automargin": True},
)


def _figure(title: str, x_title: str, y_title: str) -> go.Figure:
    figure = go.Figure(layout=LAYOUT)
    figure.update_layout(title={"text": title, "x": 0, "y": 0.98, "yref": "container", "font": {"size": 15}})
    figure.update_xaxes(title_text=x_title)
    figure.update_yaxes(title_text=y_title)
    return figure


def _short(name: str, limit: int = 28) -> str:
    """Long names stay readable in legends and axes; the hover shows them whole."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def time_axis(figure: go.Figure, times: pd.Series, bucket_s: int, max_ticks: int = 6) -> go.Figure:
    """Ticks on the buckets the points stand for, at most `max_ticks` of them, never `09:59:59.999`.

    Plotly picks sub-second ticks around one or two points; so the ticks are every k-th point, and a chart
    of a few points gets a range padded by half a bucket on each side."""
    points = pd.Series(pd.to_datetime(times.dropna()).drop_duplicates().sort_values(ignore_index=True))
    whole_days = bucket_s % 86_400 == 0
    several_days = len(points) > 0 and points.iloc[-1] - points.iloc[0] >= pd.Timedelta(days=1)
    tick_format = "%b %-d" if whole_days else "%b %-d %H:%M" if several_days else "%H:%M"
    figure.update_xaxes(type="date", tickformat=tick_format, hoverformat="%Y-%m-%d" if whole_days else "%Y-%m-%d %H:%M")
    if points.empty:
        return figure
    step = -(-len(points) // max_ticks)  # ceiling division
    figure.update_xaxes(tickmode="array", tickvals=list(points.iloc[::step]))
    if len(points) <= 12:
        half = pd.Timedelta(seconds=bucket_s / 2)
        figure.update_xaxes(range=[points.iloc[0] - half, points.iloc[-1] + half])
    return figure


def lines(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    series: str | None,
    title: str,
    x_title: str,
    y_title: str,
    hover: str,
    bucket_s: int,
) -> go.Figure:
    """One line per value of `series` (or one line) over time, `x` holding the start of each bucket of
    `bucket_s` seconds. `hover` formats the value: '%{y:,.0f} annotations'."""
    figure = _figure(title, x_title, y_title)
    groups = frame.groupby(series, sort=True) if series else [("", frame)]
    for name, group in groups:
        label = str(name[0] if isinstance(name, tuple) else name)
        figure.add_trace(
            go.Scatter(
                x=group[x],
                y=group[y],
                mode="lines+markers" if len(group) < 30 else "lines",
                name=_short(label) or y_title,
                hovertemplate=f"<b>{label}</b><br>%{{x}}<br>{hover}<extra></extra>",
            )
        )
    return time_axis(figure, frame[x], bucket_s)


def bars(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    title: str,
    x_title: str,
    y_title: str,
    hover: str,
    color: str | None = None,
    horizontal: bool = False,
) -> go.Figure:
    figure = _figure(title, y_title if horizontal else x_title, x_title if horizontal else y_title)
    groups = frame.groupby(color, sort=True) if color else [("", frame)]
    for name, group in groups:
        label = str(name[0] if isinstance(name, tuple) else name)
        categories = group[x].astype(str)
        figure.add_trace(
            go.Bar(
                x=group[y] if horizontal else categories.map(_short),
                y=categories.map(_short) if horizontal else group[y],
                orientation="h" if horizontal else "v",
                name=label or y_title,
                customdata=categories,
                hovertemplate=f"<b>%{{customdata}}</b> {label}<br>{hover}<extra></extra>",
            )
        )
    figure.update_layout(barmode="stack", showlegend=bool(color))
    if horizontal:
        figure.update_yaxes(autorange="reversed")
    return figure


def band(
    frame: pd.DataFrame,
    *,
    x: str,
    low: str,
    high: str,
    mid: str,
    title: str,
    x_title: str,
    y_title: str,
    hover: str,
    bucket_s: int,
) -> go.Figure:
    """A value with its interval over time (e.g. gold accuracy per hour with its Wilson interval)."""
    figure = _figure(title, x_title, y_title)
    figure.add_trace(
        go.Scatter(x=frame[x], y=frame[high], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip")
    )
    figure.add_trace(
        go.Scatter(
            x=frame[x],
            y=frame[low],
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(0,114,178,0.2)",
            name="95 % interval",
            hoverinfo="skip",
        )
    )
    figure.add_trace(go.Scatter(x=frame[x], y=frame[mid], mode="lines+markers", name=y_title, hovertemplate=hover))
    figure.update_yaxes(tickformat=".0%", range=[0, 1.02])
    return time_axis(figure, frame[x], bucket_s)


def heatmap(
    matrix: pd.DataFrame, *, title: str, x_title: str, y_title: str, hover: str, zmin: float, zmax: float
) -> go.Figure:
    figure = _figure(title, x_title, y_title)
    figure.add_trace(
        go.Heatmap(
            z=matrix.to_numpy(),
            x=[_short(str(c), 16) for c in matrix.columns],
            y=[_short(str(i), 16) for i in matrix.index],
            zmin=zmin,
            zmax=zmax,
            colorscale="RdBu",
            hovertemplate=hover,
            colorbar={"thickness": 12},
        )
    )
    figure.update_layout(height=max(320, 24 * len(matrix) + 120))
    return figure


def mark_alerts(figure: go.Figure, episodes: pd.DataFrame, end: pd.Timestamp) -> go.Figure:
    """Shade the time each alert fired on a time-axis chart, named in its corner (still firing: to `end`)."""
    for episode in episodes.itertuples():
        figure.add_vrect(
            x0=episode.fired_at,
            x1=episode.resolved_at if episode.resolved_at is not None and not pd.isna(episode.resolved_at) else end,
            fillcolor="#d62728",
            opacity=0.12,
            line_width=0,
            annotation_text=f"🔔 {episode.rule}",
            annotation_position="top left",
            annotation_font_size=11,
        )
    return figure


def timeline(frame: pd.DataFrame, *, start: str, end: str, y: str, color: str, hover: str, title: str) -> go.Figure:
    """One bar per row from `start` to `end`, a row per value of `y` (alert episodes, say)."""
    import plotly.express as px

    figure = px.timeline(
        frame, x_start=start, x_end=end, y=y, color=color, hover_name=hover, color_discrete_sequence=COLORWAY
    )
    figure.update_layout(LAYOUT)
    figure.update_layout(
        title={"text": title, "x": 0, "y": 0.98, "yref": "container", "font": {"size": 15}},
        height=max(200, 60 + 28 * frame[y].nunique()),
    )
    figure.update_xaxes(title_text="time (UTC)")
    figure.update_yaxes(title_text="", autorange="reversed")
    return figure
