//! The `hopster` command-line client.
