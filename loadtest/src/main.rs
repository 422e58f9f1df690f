use clap::Parser;

fn main() {
    let cli = tickwire_loadtest::Cli::parse();
    std::process::exit(tickwire_loadtest::main_with(&cli));
}
