//! `cargo run -p argus-rules --example rules_cli -- test|check FILE...`: the runner and
//! checker from the command line, with promtool's exit codes (for side-by-side runs).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, files)) = args.split_first() else {
        eprintln!("usage: rules_cli test|check FILE...");
        std::process::exit(2);
    };
    let paths: Vec<std::path::PathBuf> = files.iter().map(Into::into).collect();
    let mut out = std::io::stdout();
    let ok = match cmd.as_str() {
        "test" => argus_rules::run_files(&paths, &mut out),
        "check" => argus_rules::check_files(&paths, &mut out),
        _ => {
            eprintln!("unknown command {cmd}");
            std::process::exit(2);
        }
    };
    std::process::exit(if ok { 0 } else { 1 });
}
