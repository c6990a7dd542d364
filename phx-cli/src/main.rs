fn main() -> std::process::ExitCode {
    phx_cli::main()
}
