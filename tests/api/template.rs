//! `template.yaml` routes exactly what `router.rs` serves: every function's HttpApi events (less CORS
//! preflights) equal its `Route::paths()`, and every function directory is in the template.

use std::collections::{BTreeMap, BTreeSet};

use latchkey::router::Route;

fn template_routes() -> BTreeMap<String, BTreeSet<(String, String)>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let mut out: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    let (mut current, mut method) = (None::<String>, None::<String>);
    for line in text.lines() {
        let t = line.trim();
        if let Some(f) = t.strip_prefix("CodeUri: functions/") {
            current = Some(f.to_string());
        } else if let Some(m) = t.strip_prefix("Method: ") {
            method = Some(m.to_string());
        } else if let Some(p) = t.strip_prefix("Path: ") {
            if let (Some(f), Some(m)) = (&current, method.take()) {
                if m != "OPTIONS" {
                    out.entry(f.clone()).or_default().insert((m, p.to_string()));
                }
            }
        }
    }
    out
}

#[test]
fn template_routes_match_the_router() {
    let routes = template_routes();
    for route in Route::ALL {
        let expected: BTreeSet<(String, String)> = route
            .paths()
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(
            routes.get(route.function()),
            Some(&expected),
            "template.yaml routes of functions/{}",
            route.function()
        );
    }
    assert_eq!(routes.len(), Route::ALL.len(), "every template function is a Route");
    let dirs: BTreeSet<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let names: BTreeSet<String> = Route::ALL.iter().map(|r| r.function().to_string()).collect();
    assert_eq!(dirs, names, "functions/ holds exactly one binary per route");
}
