// The form and the address: what a visitor asks for, read from the fields, shown as the
// model's defaults, filled from a shared URL and written back into one. It knows the
// fields and the engine's request names, nothing of runs or models' files.

const $ = (id) => document.getElementById(id);

/** The number fields: field id -> the request's name. */
const NUMBERS = { steps: 'steps', views: 'views', 'patch-views': 'patchViews', lr: 'lr', seed: 'seed', size: 'size', candidates: 'candidates', 'init-noise': 'initNoise', smoothness: 'smoothness' };

/** The generation request the fields describe (empty fields are left to the model's defaults). */
export function request() {
  const out = { prompt: $('prompt').value.trim() };
  const negative = $('negative').value.trim();
  if (negative) out.negative = negative;
  for (const [id, key] of Object.entries(NUMBERS)) {
    const value = $(id).value.trim();
    if (value !== '') out[key] = Number(value);
  }
  // Sent only when it differs from the model's default.
  const jitter = $('colour-jitter');
  if (jitter.checked !== (jitter.dataset.default === 'true')) out.colourJitter = jitter.checked;
  return out;
}

/** A model's defaults (its recommended settings, else the paper's), greyed in the empty
 * fields; colour jitter is set to the model's. */
export function showDefaults(settings) {
  for (const [field, key] of Object.entries(NUMBERS)) {
    // The engine's numbers are f32: shown as the decimals they were written as.
    if (settings[key] !== undefined) $(field).placeholder = String(Number(settings[key].toPrecision(6)));
  }
  $('colour-jitter').dataset.default = String(settings.colourJitter);
  $('colour-jitter').checked = settings.colourJitter;
}

/** The form, from the URL (`?prompt=...&seed=...&steps=...&model=...&compare=...`);
 * `modelId` turns a model named in it into the picker's id. */
export function applyParams(params, modelId) {
  if (params.has('prompt')) $('prompt').value = params.get('prompt');
  if (params.has('negative')) $('negative').value = params.get('negative');
  for (const [id, key] of Object.entries(NUMBERS)) {
    const value = params.get(key) ?? params.get(id);
    if (value !== null) $(id).value = value;
  }
  if (params.has('model')) $('model').value = modelId(params.get('model'));
  if (params.has('compare')) {
    $('compare').checked = true;
    if (params.get('compare') && params.get('compare') !== '1') $('compare-model').value = modelId(params.get('compare'));
  }
}

/** A colour jitter in the address is the visitor's choice, over the model's default. */
export function applyJitterParam(params) {
  if (params.has('colourJitter')) $('colour-jitter').checked = params.get('colourJitter') !== 'false';
}

/** The ids of the models a run paints with: the chosen one, and its rival when comparing. */
export function chosenModels() {
  return [$('model').value, ...($('compare').checked ? [$('compare-model').value] : [])];
}

/** The URL that reproduces this run. */
export function shareUrl(backend) {
  const url = new URL(location.href);
  url.search = '';
  for (const [key, value] of Object.entries(request())) url.searchParams.set(key, String(value));
  // A folder from disk cannot be shared: the address then names no model (the default).
  const shareable = (id) => !id.startsWith('disk:');
  if (shareable($('model').value)) url.searchParams.set('model', $('model').value);
  if ($('compare').checked) url.searchParams.set('compare', shareable($('compare-model').value) ? $('compare-model').value : '1');
  if (backend === 'cpu') url.searchParams.set('backend', 'cpu');
  return url;
}
