//! The `pyxis` binary: everything is in the library (see `pyxis_cli::run`).

fn main() -> std::process::ExitCode {
    pyxis_cli::run()
}
