//! The `tonedesk` binary: see `tonedesk --help`.

fn main() -> std::process::ExitCode {
    tonedesk::cli::main()
}
