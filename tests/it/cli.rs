//! CLI tests live with the CLI work; this module is declared by main.rs.
