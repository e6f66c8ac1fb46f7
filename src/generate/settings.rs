//! Every setting of a generation, declared once. Each seam declares its own in its module
//! (`ViewSettings` in augment, `CanvasSettings` in param, `ObjectiveSettings` in objective,
//! `UpdateSettings` in optimise); `Settings` gathers them with the run's own (steps, canvas
//! size, seed). A field's doc comment is its doc everywhere, its `Default` is the paper's
//! value, its serde name (camelCase) is its name in the page, a share URL and a model's
//! `recommended`, and its clap flag is derived from it (native builds only). docs/generation.md's
//! table of settings is checked against this declaration by a test.
//!
//! Settings are layered by name: the paper's, then a model's recommendation, then what a
//! person gave (`Patch`), each over the last; the result is checked before any work starts.

use serde::{Deserialize, Deserializer, Serialize};

use super::augment::ViewSettings;
use super::objective::ObjectiveSettings;
use super::optimise::UpdateSettings;
use super::param::CanvasSettings;
use crate::tokenizer::MAX_PROMPT_CHARS;
pub use crate::weights::manifest::Patch;
use crate::{Error, Result};

pub use super::optimise::Optimiser;
pub use super::param::Parameterisation;

/// A text the picture is pulled toward (or, as a negative, pushed away from), with its weight.
/// Written `TEXT` or `TEXT::WEIGHT` (or, in JSON, `{ "text", "weight" }`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prompt {
    pub text: String,
    pub weight: f32,
}

/// A negative prompt's weight where none is written.
pub const NEGATIVE_WEIGHT: f32 = 0.3;

impl Prompt {
    /// `TEXT` or `TEXT::WEIGHT`, the weight `default_weight` where none is written.
    pub fn parse(text: &str, default_weight: f32) -> Result<Self> {
        let (text, weight) = weighted(text, "TEXT::WEIGHT, e.g. 'a red star::2'")?;
        Ok(Self { text: text.to_string(), weight: weight.unwrap_or(default_weight) })
    }
}

/// `THING` or `THING::WEIGHT` split, the weight read (`how` shows the form in the message
/// when it is not a number): prompts, and the command line's image prompts.
pub fn weighted<'a>(given: &'a str, how: &str) -> Result<(&'a str, Option<f32>)> {
    match given.rsplit_once("::") {
        Some((thing, weight)) => {
            let weight = weight.trim().parse().map_err(|_| Error::Invalid(format!("'{weight}' is not a weight (write {how})")))?;
            Ok((thing, Some(weight)))
        }
        None => Ok((given, None)),
    }
}

/// So that clap can take a prompt as an argument (its weight is read again, with the right
/// default, where the settings are layered).
impl std::str::FromStr for Prompt {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text, 1.0)
    }
}

/// One prompt or several, each a string (`TEXT::WEIGHT`) or `{ text, weight }`.
fn prompts<'de, D: Deserializer<'de>>(deserializer: D, default_weight: f32) -> std::result::Result<Vec<Prompt>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum One {
        Text(String),
        Full { text: String, weight: f32 },
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(One),
        Many(Vec<One>),
    }
    let many = match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    };
    many.into_iter()
        .map(|one| match one {
            One::Text(text) => Prompt::parse(&text, default_weight).map_err(serde::de::Error::custom),
            One::Full { text, weight } => Ok(Prompt { text, weight }),
        })
        .collect()
}

pub(super) fn positive_prompts<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<Prompt>, D::Error> {
    prompts(d, 1.0)
}

pub(super) fn negative_prompts<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<Prompt>, D::Error> {
    prompts(d, NEGATIVE_WEIGHT)
}

/// A generation's settings: the run's own, and each seam's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[cfg_attr(cli, derive(clap::Args))]
pub struct Settings {
    /// Optimisation steps.
    #[cfg_attr(cli, arg(long))]
    pub steps: usize,
    /// Side of the square canvas in pixels (none: the model's resolution); views are
    /// resampled to the model's resolution.
    #[cfg_attr(cli, arg(long))]
    pub size: Option<usize>,
    /// Seed of every random draw (start, views): the same seed paints the same picture.
    #[cfg_attr(cli, arg(long))]
    pub seed: u64,
    /// A snapshot (a frame of the animation) is kept every this many steps, and the last.
    #[cfg_attr(cli, arg(long))]
    pub snapshot_every: usize,
    #[serde(flatten)]
    #[cfg_attr(cli, command(flatten))]
    pub objective: ObjectiveSettings,
    #[serde(flatten)]
    #[cfg_attr(cli, command(flatten))]
    pub view: ViewSettings,
    #[serde(flatten)]
    #[cfg_attr(cli, command(flatten))]
    pub canvas: CanvasSettings,
    #[serde(flatten)]
    #[cfg_attr(cli, command(flatten))]
    pub update: UpdateSettings,
}

/// The paper's recipe, with no prompt.
impl Default for Settings {
    fn default() -> Self {
        Self {
            steps: 100,
            size: None,
            seed: 0,
            snapshot_every: 10,
            objective: ObjectiveSettings::default(),
            view: ViewSettings::default(),
            canvas: CanvasSettings::default(),
            update: UpdateSettings::default(),
        }
    }
}

impl Settings {
    /// The settings a generation with the model of `manifest` takes where a person sets
    /// nothing: its recommended ones over the paper's, on a canvas of its resolution.
    pub fn for_model(manifest: &crate::weights::Manifest) -> Result<Self> {
        let paper = Self { size: Some(manifest.config.vision.image_size()), ..Self::default() };
        match &manifest.recommended {
            Some(recommended) => paper.patched(recommended),
            None => Ok(paper),
        }
    }

    /// Refuses a model's recommendation that could not paint (the front ends check it as the
    /// model loads, so a bad manifest fails there, not on Generate).
    pub fn check_recommendation(recommended: Option<&Patch>) -> Result<()> {
        let Some(recommended) = recommended else { return Ok(()) };
        let settings = Settings::paper("a recommendation", 64).patched(recommended)?;
        settings.validate().map_err(|e| Error::Invalid(format!("the model's recommended settings: {e}")))
    }
}

/// A setting's value as a person reads it: a number as the f32 it is (`0.01`, not the f64
/// `0.009999999776482582` it travels as), a name without quotes, a list of prompts as their
/// texts.
pub fn shown(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => (n.as_f64().unwrap_or_default() as f32).to_string(),
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        Value::Array(items) => items.iter().map(|item| item.get("text").map_or_else(|| shown(item), shown)).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A setting's name from its field's name (and its argument's id): `patch_views` -> `patchViews`.
pub fn name_of(field: &str) -> String {
    let mut parts = field.split('_');
    let first = parts.next().unwrap_or_default().to_string();
    parts.fold(first, |name, part| {
        let mut chars = part.chars();
        name + &chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
    })
}

/// docs/generation.md's table of settings, made from their declaration: each setting's name
/// (in the page, a share URL and a manifest), its flag, the paper's value and its doc.
#[cfg(cli)]
pub fn markdown_table() -> String {
    use clap::Args as _;
    let paper = Settings::default().by_name();
    let mut table = String::from("| name | command line | paper's value | what it is |\n| --- | --- | --- | --- |\n");
    for arg in Settings::augment_args(clap::Command::new("settings")).get_arguments() {
        let name = name_of(arg.get_id().as_str());
        let default = match paper.get(&name) {
            Some(serde_json::Value::Array(list)) if list.is_empty() => "—".to_string(),
            Some(serde_json::Value::Null) | None => "—".to_string(),
            Some(value) => shown(value),
        };
        let flag = arg.get_long().map(|long| format!("`--{long}`")).unwrap_or_default();
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default().replace('|', "\\|");
        table += &format!("| `{name}` | {flag} | {default} | {help} |\n");
    }
    table
}

/// Canvases larger than this on a side are refused: views are resampled from the canvas every
/// step, and a browser's GPU memory is finite.
pub const MAX_SIZE: usize = 1024;
pub const MAX_VIEWS: usize = 256;
pub const MAX_STEPS: usize = 10_000;

impl Settings {
    /// The paper's recipe for one prompt, on a canvas of `size`.
    pub fn paper(prompt: &str, size: usize) -> Self {
        let mut s = Self { size: Some(size), ..Self::default() };
        s.objective.prompt = vec![Prompt { text: prompt.to_string(), weight: 1.0 }];
        s
    }

    /// Every setting by its name (the names a `Patch` uses).
    pub fn by_name(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => unreachable!("settings are plain data and serialise to an object"),
        }
    }

    /// These settings with `patch`'s over them, by name. An unknown name is refused (a typo
    /// must not pass unnoticed); a null is no value (JavaScript's `undefined` arrives as one),
    /// so the setting beneath stands; values are checked later, by `validate`.
    pub fn patched(&self, patch: &Patch) -> Result<Self> {
        let mut merged = self.by_name();
        for (name, value) in &patch.0 {
            if !merged.contains_key(name) {
                return Err(Error::Invalid(format!("there is no setting named '{name}'")));
            }
            if !value.is_null() {
                merged.insert(name.clone(), value.clone());
            }
        }
        let mut patched: Self = serde_json::from_value(serde_json::Value::Object(merged))
            .map_err(|e| Error::Invalid(format!("generation settings: {e}")))?;
        // What is given as files, not by name, stays.
        patched.canvas.start = self.canvas.start.clone();
        patched.objective.image_prompts = self.objective.image_prompts.clone();
        Ok(patched)
    }

    /// The canvas's side: the one asked for, else `model_size`.
    pub fn size_or(&self, model_size: usize) -> usize {
        self.size.unwrap_or(model_size)
    }

    /// The learning rate of step `step` (from 0).
    pub fn learning_rate_at(&self, step: usize) -> f32 {
        self.update.learning_rate_at(step, self.steps)
    }

    /// Refuses settings that cannot give a picture, naming the setting.
    pub fn validate(&self) -> Result<()> {
        let fail = |what: String| Err(Error::Invalid(what));
        if !(1..=MAX_STEPS).contains(&self.steps) {
            return fail(format!("steps must be 1 to {MAX_STEPS}, not {}", self.steps));
        }
        if let Some(size) = self.size {
            if !(8..=MAX_SIZE).contains(&size) {
                return fail(format!("the canvas must be 8 to {MAX_SIZE} pixels on a side, not {size}"));
            }
        }
        if self.snapshot_every == 0 {
            return fail("snapshots must be every 1 step or more".into());
        }
        self.objective.validate()?;
        self.view.validate()?;
        self.canvas.validate()?;
        self.update.validate()
    }
}

/// A number that must be finite and positive, named in the message.
pub(super) fn positive(name: &str, v: f32) -> Result<()> {
    if v.is_finite() && v > 0.0 { Ok(()) } else { Err(Error::Invalid(format!("{name} must be a positive number, not {v}"))) }
}

/// A number that must be finite and not negative, named in the message.
pub(super) fn non_negative(name: &str, v: f32) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::Invalid(format!("{name} must be zero or a positive number, not {v}")))
    }
}

/// A prompt's text, checked.
pub(super) fn check_prompts(kind: &str, prompts: &[Prompt]) -> Result<()> {
    let fail = |what: String| Err(Error::Invalid(what));
    for p in prompts {
        if p.text.trim().is_empty() {
            return fail(format!("a {kind} is empty"));
        }
        if p.text.chars().count() > MAX_PROMPT_CHARS {
            return fail(format!("a {kind} is longer than {MAX_PROMPT_CHARS} characters"));
        }
        if !(p.weight.is_finite() && p.weight > 0.0) {
            return fail(format!("the {kind} '{}' has weight {}; weights must be positive numbers", p.text, p.weight));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Patch, Prompt, Settings};

    /// docs/generation.md's table of settings is this declaration's: regenerate it with
    /// `CLIPAG_BLESS=1 cargo test --release --lib settings` after adding or changing one.
    #[cfg(cli)]
    #[test]
    fn the_docs_table_of_settings_is_the_declarations() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/generation.md");
        let docs = std::fs::read_to_string(path).unwrap();
        let (begin, end) = ("<!-- settings: made by settings::markdown_table -->\n", "<!-- /settings -->");
        let from = docs.find(begin).expect("the table's opening marker") + begin.len();
        let to = docs.find(end).expect("the table's closing marker");
        let table = super::markdown_table();
        if std::env::var_os("CLIPAG_BLESS").is_some() {
            std::fs::write(path, format!("{}{table}{}", &docs[..from], &docs[to..])).unwrap();
        } else {
            assert_eq!(docs[from..to], table, "docs/generation.md's table of settings is stale (CLIPAG_BLESS=1 rewrites it)");
        }
    }

    #[test]
    fn the_cosine_decay_starts_at_the_rate_halves_midway_and_ends_near_zero() {
        let mut s = Settings::paper("a red star", 64);
        s.steps = 40;
        let rate = s.update.lr;
        assert_eq!(s.learning_rate_at(39), rate, "constant unless asked");
        s.update.decay = true;
        assert_eq!(s.learning_rate_at(0), rate);
        assert!((s.learning_rate_at(20) - rate / 2.0).abs() < 1e-6);
        assert!(s.learning_rate_at(39) < rate * 0.01);
    }

    fn patch(json: serde_json::Value) -> Patch {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_patch_sets_what_it_names_and_nothing_else() {
        let paper = Settings::paper("a red star", 64);
        let s = paper.patched(&patch(serde_json::json!({ "views": 4, "lr": 0.05, "cutout": false, "negative": "blur" }))).unwrap();
        assert_eq!((s.view.views, s.update.lr, s.view.cutout), (4, 0.05, false));
        assert_eq!(s.objective.negative, vec![Prompt { text: "blur".into(), weight: super::NEGATIVE_WEIGHT }]);
        assert_eq!((s.steps, s.view.patch_views, &s.objective.prompt), (paper.steps, paper.view.patch_views, &paper.objective.prompt));
        // Every value survives the round trip through names exactly (f32 included).
        assert_eq!(paper.patched(&Patch::default()).unwrap(), paper);
    }

    #[test]
    fn an_unknown_name_or_a_wrong_type_is_refused_by_name() {
        let paper = Settings::paper("a red star", 64);
        let error = paper.patched(&patch(serde_json::json!({ "veiws": 4 }))).unwrap_err().to_string();
        assert!(error.contains("'veiws'"), "{error}");
        let error = paper.patched(&patch(serde_json::json!({ "steps": "many" }))).unwrap_err().to_string();
        assert!(error.contains("generation settings"), "{error}");
    }

    #[test]
    fn prompts_are_one_or_many_with_weights_written_or_defaulted() {
        let s = Settings::default().patched(&patch(serde_json::json!({ "prompt": ["a star::2", { "text": "a moon", "weight": 0.5 }], "negative": ["blur::1"] }))).unwrap();
        assert_eq!(s.objective.prompt, vec![Prompt { text: "a star".into(), weight: 2.0 }, Prompt { text: "a moon".into(), weight: 0.5 }]);
        assert_eq!(s.objective.negative[0].weight, 1.0);
    }

    #[test]
    fn a_recommendation_may_not_name_a_prompt_nor_fail_to_paint() {
        let check = |json| Settings::check_recommendation(Some(&patch(json)));
        assert!(check(serde_json::json!({ "steps": 0 })).is_err());
        assert!(check(serde_json::json!({ "veiws": 16 })).is_err());
        assert!(check(serde_json::json!({ "steps": 60, "views": 16 })).is_ok());
        let manifest = |recommended| {
            let mut json: serde_json::Value = serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/shapes-robust/manifest.json"))).unwrap();
            json["recommended"] = recommended;
            crate::weights::Manifest::parse(&json.to_string())
        };
        assert!(manifest(serde_json::json!({ "prompt": "a cat" })).is_err());
        assert!(manifest(serde_json::json!({ "steps": 60 })).is_ok());
    }
}
