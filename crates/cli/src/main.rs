//! The native command line: a thin shell over the library, one module per group of commands
//! (each its arguments, and printing). Results go to stdout (JSON where they are data), notes
//! and errors to stderr, and failures exit non-zero.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod common;
mod given;
mod models;
mod paint;
mod shapes;

#[derive(Parser)]
#[command(name = "clipag", version, about = "Generator-free text-to-image through a robust CLIP")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Models(models::Command),
    #[command(flatten)]
    Paint(paint::Command),
    /// The Shapes world and its models: render, train, evaluate.
    #[command(subcommand)]
    Shapes(shapes::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let done = pollster::block_on(async {
        match cli.command {
            Command::Models(command) => models::run(command).await,
            Command::Paint(command) => paint::run(command).await,
            Command::Shapes(command) => shapes::run(command).await,
        }
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("clipag: {error}");
            ExitCode::FAILURE
        }
    }
}
