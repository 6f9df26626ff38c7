//! The CLI's side of the HTTP API.
