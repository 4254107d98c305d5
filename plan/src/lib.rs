//! Project detection: turns a project directory (plus command-line flags) into a `BuildPlan`.
//!
//! Pure: reads the project directory, never writes and never touches the network.
