/** The SDXL scheduler config (scheduler/scheduler_config.json), shared by SDXL, SSD-1B and Vega. */
// Generated from the reference configs in shared/fixtures (configs/sdxl-scheduler.json); edit only to track upstream.

export const SDXL_SCHEDULER: Readonly<Record<string, unknown>> = {
  "_class_name": "EulerDiscreteScheduler",
  "beta_end": 0.012,
  "beta_schedule": "scaled_linear",
  "beta_start": 0.00085,
  "clip_sample": false,
  "interpolation_type": "linear",
  "num_train_timesteps": 1000,
  "prediction_type": "epsilon",
  "sample_max_value": 1.0,
  "set_alpha_to_one": false,
  "skip_prk_steps": true,
  "steps_offset": 1,
  "timestep_spacing": "leading",
  "trained_betas": null,
  "use_karras_sigmas": false
};
