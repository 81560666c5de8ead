//! Authentication tests live with the auth work; this module is declared by main.rs.
