//! The web page (placeholder).
