//! Entry point: parse the command line, run it on a tokio runtime, and turn any error into
//! one line on standard error with an exit code (no backtrace unless RUST_BACKTRACE is set).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Installs the panic and error report hooks before anything draws.
    let _ = color_eyre::install();
    let cli = recalliq::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("recalliq: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(recalliq::cli::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("recalliq: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}
