#![no_main]
//! libFuzzer entry for `latchkey_fuzz::targets::envelope` (see that function for its properties).
libfuzzer_sys::fuzz_target!(|data: &[u8]| latchkey_fuzz::targets::envelope(data));
