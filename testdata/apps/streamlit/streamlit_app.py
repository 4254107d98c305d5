"""A Streamlit app: `streamlit run streamlit_app.py`, headless, on $PORT."""

import streamlit as st

st.title("pyslip")
st.write("hello from streamlit")
