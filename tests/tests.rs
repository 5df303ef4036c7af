//! The integration tests, one binary. Modules:
//!
//! - `scenario_files`: broken and good scenario files and their messages.

mod scenario_files;
