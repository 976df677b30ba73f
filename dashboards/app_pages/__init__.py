"""Dashboard pages, run by dashboards/app.py through st.navigation (not Streamlit's pages/ auto-discovery)."""
