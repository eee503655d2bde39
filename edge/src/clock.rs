//! Time and randomness at the edge: `Date.now()` and `crypto.getRandomValues`.

pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::getrandom(&mut b);
    u64::from_le_bytes(b)
}

/// A random 128-bit id in hex.
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::getrandom(&mut b);
    hex::encode(b)
}
