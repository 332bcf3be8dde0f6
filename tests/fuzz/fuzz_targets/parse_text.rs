//! Text-format parser: never panics on any bytes; whatever it accepts, the writer
//! writes back into text the parser accepts again, with the same families (unless a
//! family's name is another's plus `_sum`/`_count`/`_bucket`: the text format itself is
//! ambiguous then, and the Go parser folds such samples depending on order).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(fams) = argus_expfmt::parse_text_bytes(data) {
        let text = argus_expfmt::write_text(&fams);
        let ambiguous = fams.iter().any(|f| {
            ["_sum", "_count", "_bucket"]
                .iter()
                .any(|s| fams.iter().any(|g| g.name == format!("{}{s}", f.name)))
        });
        if ambiguous {
            return;
        }
        let again = argus_expfmt::parse_text(&text).expect("writer output must parse");
        assert_eq!(argus_expfmt::write_text(&again), text, "write→parse→write is a fixpoint");
        for f in &fams {
            let _ = argus_expfmt::series(f);
        }
        let bytes = argus_expfmt::encode_delimited(&fams);
        let back = argus_expfmt::decode_delimited(&bytes).expect("encoder output must decode");
        assert_eq!(argus_expfmt::write_text(&back), text, "protobuf round trip keeps the families");
    }
});
