/**
 * diffusers' ConfigMixin: a saved config.json may list, under `_use_default_values`, the __init__
 * arguments that were not passed when it was written (diffusers >= 0.26 records them). from_config
 * drops those keys, values and all, so the class defaults apply. A value set by hand in such a file
 * (e.g. `time_cond_proj_dim: 256` while the list still names it) is therefore ignored by diffusers,
 * and must be ignored here too, or the same folder would build another model.
 */
export function withoutDefaultedKeys<T extends Record<string, any>>(raw: T): T {
  const listed = raw?._use_default_values;
  if (!Array.isArray(listed) || listed.length === 0) return raw;
  const out: Record<string, any> = {};
  for (const [k, v] of Object.entries(raw)) if (!listed.includes(k)) out[k] = v;
  return out as T;
}
