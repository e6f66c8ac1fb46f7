// The form and the address: what a visitor asks for, read from the fields, shown as the
// model's defaults, filled from a shared URL and written back into one. It knows the
// fields and the engine's request names, nothing of runs or models' files.

const $ = (id) => document.getElementById(id);

/** The form's settings: every field marked with the setting's name (`data-setting`, the
 * engine's name for it, docs/generation.md), a number or a switch. */
const settingFields = () => [...document.querySelectorAll('[data-setting]')];

/** The generation request the fields describe (empty fields are left to the model's defaults). */
export function request() {
  const out = {};
  // An image prompt can stand alone: an empty text prompt is left out.
  if ($('prompt').value.trim()) out.prompt = $('prompt').value.trim();
  const negative = $('negative').value.trim();
  if (negative) out.negative = negative;
  for (const field of settingFields()) {
    const name = field.dataset.setting;
    if (field.type === 'checkbox') {
      // Sent only when it differs from the model's default.
      if (field.checked !== (field.dataset.default === 'true')) out[name] = field.checked;
    } else if (field.tagName === 'SELECT') {
      if (field.value !== field.dataset.default) out[name] = field.value;
    } else if (field.value.trim() !== '') {
      out[name] = Number(field.value.trim());
    }
  }
  return out;
}

/** A model's defaults (its recommended settings, else the paper's), greyed in the empty
 * fields; switches are set to the model's. */
export function showDefaults(settings) {
  for (const field of settingFields()) {
    const value = settings[field.dataset.setting];
    if (value === undefined || value === null) continue;
    if (field.type === 'checkbox') {
      field.dataset.default = String(value);
      field.checked = value;
    } else if (field.tagName === 'SELECT') {
      // A choice the visitor made (or the address gave) stays; the model's default is noted.
      if (field.value === field.dataset.default) field.value = value;
      field.dataset.default = value;
    } else {
      // The engine's numbers are f32: shown as the decimals they were written as.
      field.placeholder = String(Number(value.toPrecision(6)));
    }
  }
}

/** The form, from the URL (`?prompt=...&seed=...&steps=...&model=...&compare=...`);
 * `modelId` turns a model named in it into the picker's id. */
export function applyParams(params, modelId) {
  // An address is not typed into the fields: their length limit is kept by hand.
  for (const id of ['prompt', 'negative']) {
    if (params.has(id)) $(id).value = params.get(id).slice(0, $(id).maxLength);
  }
  for (const field of settingFields()) {
    if (field.type === 'checkbox') continue; // after the model's defaults: applySwitchParams
    const value = params.get(field.dataset.setting) ?? params.get(field.id);
    if (value !== null) field.value = value;
  }
  if (params.has('model')) $('model').value = modelId(params.get('model'));
  if (params.has('compare')) {
    $('compare').checked = true;
    if (params.get('compare') && params.get('compare') !== '1') $('compare-model').value = modelId(params.get('compare'));
  }
}

/** The steers a shared URL records, in order: `[{ step, prompt, negative }]`; one that cannot
 * be read is left out (an address is typed by hand too). */
export function steersOf(params) {
  const out = [];
  for (const value of params.getAll('steer')) {
    try {
      const [step, prompt, negative] = JSON.parse(value);
      if (Number.isInteger(step) && step > 0 && typeof prompt === 'string' && prompt.trim()) {
        out.push({ step, prompt: prompt.slice(0, 2000), negative: typeof negative === 'string' ? negative.slice(0, 2000) : '' });
      }
    } catch {
      console.warn('a steer in the address could not be read:', value);
    }
  }
  return out.sort((a, b) => a.step - b.step);
}

/** A switch in the address is the visitor's choice, over the model's default. */
export function applySwitchParams(params) {
  for (const field of settingFields().filter((f) => f.type === 'checkbox')) {
    const value = params.get(field.dataset.setting);
    if (value !== null) field.checked = value !== 'false';
  }
}

/** The ids of the models a run paints with: the chosen one, and its rival when comparing. */
export function chosenModels() {
  return [$('model').value, ...($('compare').checked ? [$('compare-model').value] : [])];
}

/** The URL that reproduces this run; `stages` (the run's prompts in order, `{ step, prompt,
 * negative }`) adds each steer after the first as `steer=[step,"prompt","negative"]`, and the
 * first stage's prompts stand for the fields'. */
export function shareUrl(backend, stages = []) {
  const url = new URL(location.href);
  url.search = '';
  const fields = request();
  if (stages.length > 1) {
    delete fields.negative;
    fields.prompt = stages[0].prompt;
    if (stages[0].negative) fields.negative = stages[0].negative;
  }
  for (const [key, value] of Object.entries(fields)) url.searchParams.set(key, String(value));
  for (const { step, prompt, negative } of stages.slice(1)) url.searchParams.append('steer', JSON.stringify([step, prompt, negative]));
  // A folder from disk cannot be shared: the address then names no model (the default).
  const shareable = (id) => !id.startsWith('disk:');
  if (shareable($('model').value)) url.searchParams.set('model', $('model').value);
  if ($('compare').checked) url.searchParams.set('compare', shareable($('compare-model').value) ? $('compare-model').value : '1');
  if (backend === 'cpu') url.searchParams.set('backend', 'cpu');
  return url;
}
