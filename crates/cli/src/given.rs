//! The generation settings as command-line arguments, derived from their one declaration
//! (`clipag::generate::Settings`, clap's derive): every flag, its doc, and the paper's value
//! in its help. What comes back is only what was typed, by name (a `Patch`), so that a
//! model's recommendation, or a preset, stands wherever the person said nothing.

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command, FromArgMatches};
use clipag::generate::settings::name_of;
use clipag::generate::{Patch, Settings};
use serde_json::Value;

/// The settings typed on the command line.
#[derive(Debug, Clone, Default)]
pub struct Given(pub Patch);

/// The paper's settings by name.
fn paper() -> serde_json::Map<String, Value> {
    Settings::default().by_name()
}

/// The ids of the settings' arguments.
fn ids() -> Vec<String> {
    Settings::augment_args(Command::new("settings")).get_arguments().map(|a| a.get_id().to_string()).collect()
}

impl Args for Given {
    fn augment_args(cmd: Command) -> Command {
        let paper = paper();
        ids().into_iter().fold(Settings::augment_args(cmd), |cmd, id| {
            let shown = match paper.get(&name_of(&id)) {
                Some(Value::Array(list)) if list.is_empty() => None,
                Some(Value::Null) | None => None,
                Some(value) => Some(clipag::generate::settings::shown(value)),
            };
            let switch = matches!(paper.get(&name_of(&id)), Some(Value::Bool(_)));
            // None is required: where a flag is absent, the settings beneath it stand.
            cmd.mut_arg(&id, |arg| {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                let mut arg = arg.required(false);
                if switch {
                    // `--cutout` alone turns a switch on, `--cutout false` off: either way
                    // over whatever the layer beneath chose.
                    arg = arg.action(clap::ArgAction::Set).num_args(0..=1).default_missing_value("true");
                }
                match &shown {
                    Some(value) => arg.help(format!("{help} [paper: {value}]")),
                    None => arg,
                }
            })
        })
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for Given {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let paper = paper();
        let mut patch = serde_json::Map::new();
        for id in ids() {
            if matches.value_source(&id) != Some(ValueSource::CommandLine) {
                continue;
            }
            let name = name_of(&id);
            let raw: Vec<String> =
                matches.get_raw(&id).into_iter().flatten().map(|v| v.to_string_lossy().into_owned()).collect();
            let last = raw.last().cloned().unwrap_or_default();
            let value = match paper.get(&name) {
                Some(Value::Array(_)) => Value::Array(raw.into_iter().map(Value::String).collect()),
                Some(Value::Bool(_)) => Value::Bool(last == "true"),
                Some(Value::String(_)) => Value::String(last),
                _ => number(&id, &last)?,
            };
            patch.insert(name, value);
        }
        Ok(Given(Patch(patch)))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// A number as JSON: an integer where it is one (a count must not arrive as `32.0`). JSON has
/// no NaN nor infinity, and no setting takes one: refused here, naming the setting.
fn number(id: &str, raw: &str) -> Result<Value, clap::Error> {
    if let Ok(n) = raw.parse::<u64>() {
        return Ok(n.into());
    }
    if let Ok(n) = raw.parse::<i64>() {
        return Ok(n.into());
    }
    let what = Settings::augment_args(Command::new("settings"))
        .get_arguments()
        .find(|a| a.get_id() == id)
        .and_then(|a| a.get_help().map(|h| h.to_string()))
        .unwrap_or_default();
    raw.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| {
            let flag = id.replace('_', "-");
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("--{flag} {raw}: not a finite number ({what})\n"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(args: &[&str]) -> Patch {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            given: Given,
        }
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("clipag").chain(args.iter().copied())).unwrap().given.0
    }

    #[test]
    fn only_what_was_typed_comes_back_by_name() {
        let patch = given(&["--views", "4", "--lr", "0.05", "--cutout", "false", "--decay", "--prompt", "a red star::2", "--prompt", "a moon"]);
        assert_eq!(
            serde_json::Value::Object(patch.0.clone()),
            serde_json::json!({ "views": 4, "lr": 0.05, "cutout": false, "decay": true, "prompt": ["a red star::2", "a moon"] })
        );
        let settings = Settings::default().patched(&patch).unwrap();
        assert_eq!((settings.view.views, settings.objective.prompt[0].weight), (4, 2.0));
        assert!(given(&[]).0.is_empty());
    }

    #[test]
    fn every_setting_has_a_flag_and_its_name() {
        let names: Vec<String> = ids().iter().map(|id| name_of(id)).collect();
        let paper = paper();
        let mut keys: Vec<&String> = paper.keys().collect();
        keys.sort();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted.iter().collect::<Vec<_>>(), keys);
        assert_eq!(name_of("patch_views"), "patchViews");
    }
}
