"""Streamlit + Plotly dashboard for project leads."""
