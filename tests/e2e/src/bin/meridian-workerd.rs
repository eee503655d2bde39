//! Runs the built edge Worker in workerd with a given config, for `scripts/bench`:
//! `meridian-workerd CONFIG.yaml [NAME=VALUE ...]` prints `listening on http://ADDR` and
//! serves until killed.

fn main() {
    let mut args = std::env::args().skip(1);
    let config = args.next().expect("usage: meridian-workerd CONFIG.yaml [NAME=VALUE ...]");
    let yaml = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{config}: {e}"));
    let pairs: Vec<(String, String)> = args.map(|a| a.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).expect("NAME=VALUE")).collect();
    let bindings: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let proc = meridian_e2e::start_workerd(&yaml, &bindings);
    println!("meridian-workerd listening on {}", proc.url);
    eprintln!("workerd logs: {}", proc.stderr_path.display());
    loop {
        std::thread::park();
    }
}
