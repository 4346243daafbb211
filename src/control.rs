//! The pure control core (DESIGN §5).
