//! The `contend` binary: parse, call the library, map the outcome to an
//! exit code (0 ok, 1 runtime failure, 2 bad input, 3 thresholds failed or a
//! regression, 130/143 interrupted).

use clap::Parser;
use contend::cli::{Cli, Command};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap uses 2 for usage errors and 0 for --help/--version.
            std::process::exit(e.exit_code());
        }
    };
    // As many open files as the hard limit allows, for this process and the
    // components it starts; a run that would need more is refused before it
    // starts (see `contend doctor`), so a failure here is only reported there.
    let _ = contend::limits::raise_nofile();
    let result = match cli.command {
        Command::Run(args) => contend::app::run(&args).map_err(anyhow::Error::from),
        Command::Report { dir } => contend::app::report(&dir).map_err(anyhow::Error::from),
        Command::Compare(args) => contend::app::compare(&args).map_err(anyhow::Error::from),
        Command::Merge(args) => contend::app::merge(&args).map_err(anyhow::Error::from),
        Command::Upstream(args) => mock_upstream::run(args).map(|()| 0),
        Command::Gateway(args) => contend::app::gateway(&args).map_err(anyhow::Error::from),
        Command::Doctor(args) => contend::app::doctor(&args).map_err(anyhow::Error::from),
        Command::Logs(args) => contend::app::logs::run(&args).map_err(anyhow::Error::from),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            // `contend upstream`'s bad settings are bad input, as for the
            // `mock-upstream` binary.
            let code = match e.downcast_ref::<contend::error::Error>() {
                Some(e) => e.exit_code(),
                None if e.downcast_ref::<mock_upstream::ConfigError>().is_some() => 2,
                None => 1,
            };
            std::process::exit(code);
        }
    }
}
