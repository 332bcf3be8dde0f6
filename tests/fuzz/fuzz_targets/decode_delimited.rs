//! Delimited protobuf decoder: never panics, never allocates beyond the input (a
//! length prefix larger than the rest is an error); what it accepts re-encodes and
//! decodes to the same families.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(fams) = argus_expfmt::decode_delimited(data) {
        let text = argus_expfmt::write_text(&fams);
        let bytes = argus_expfmt::encode_delimited(&fams);
        let back = argus_expfmt::decode_delimited(&bytes).expect("encoder output must decode");
        assert_eq!(argus_expfmt::write_text(&back), text);
        for f in &fams {
            let _ = argus_expfmt::series(f);
        }
    }
});
