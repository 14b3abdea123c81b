fn main() -> std::process::ExitCode {
    migrate::main()
}
