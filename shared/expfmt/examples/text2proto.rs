//! Converts text exposition on stdin to delimited protobuf on stdout (or back with
//! `--decode`). Used to make fuzz seeds and hand-check bodies:
//! `cargo run -p argus-expfmt --example text2proto < metrics.txt > body.bin`.

use std::io::{Read, Write};

fn main() {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("text2proto: cannot read stdin: {e}");
        std::process::exit(1);
    }
    let out = if std::env::args().any(|a| a == "--decode") {
        match argus_expfmt::decode_delimited(&input) {
            Ok(f) => argus_expfmt::write_text(&f).into_bytes(),
            Err(e) => {
                eprintln!("text2proto: {e}");
                std::process::exit(1);
            }
        }
    } else {
        match argus_expfmt::parse_text_bytes(&input) {
            Ok(f) => argus_expfmt::encode_delimited(&f),
            Err(e) => {
                eprintln!("text2proto: {e}");
                std::process::exit(1);
            }
        }
    };
    if let Err(e) = std::io::stdout().write_all(&out) {
        eprintln!("text2proto: cannot write stdout: {e}");
        std::process::exit(1);
    }
}
