/**
 * berth-agent's config file (`--config`: flag keys beside the sections of agent/config.ts) and
 * what `--check-config` can verify without starting: addresses parse, files named can be read,
 * directories can be made. Nothing here binds, dials, creates a directory or touches cgroups.
 */
import type { Command } from 'commander';
import { ConfigChecker } from '../common/config-check.js';
import { applyConfigFile, settleConfigOrExit, type ConfigFileResult, type ConfigProblem } from '../common/config-file.js';
import { AGENT_CONFIG_SECTIONS, ConfigError, DEFAULT_AGENT_CONFIG_FILE, parseAgentConfig, type AgentConfig } from './config.js';
import { parseListen } from './metrics/index.js';

function str(opts: Record<string, unknown>, attr: string): string | undefined {
  const v = opts[attr];
  return typeof v === 'string' ? v : undefined;
}

/** agentSections validates the file's non-flag sections, one at a time so every bad one is reported. */
function agentSections(result: ConfigFileResult): { config: AgentConfig; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  for (const [section, value] of Object.entries(result.sections)) {
    try {
      parseAgentConfig({ [section]: value }, result.file);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push({ key: section, text: err.message });
    }
  }
  return { config: parseAgentConfig(problems.length === 0 ? result.sections : {}, result.file), problems };
}

/** checkAgentConfig lists what is wrong with the agent's parsed options and file sections. */
export function checkAgentConfig(opts: Record<string, unknown>, config: AgentConfig, result: ConfigFileResult): ConfigProblem[] {
  const c = new ConfigChecker(result);
  // As the agent reads it: HOST:PORT, optionally written as https://HOST:PORT.
  c.dialAddresses('server', str(opts, 'server')?.split(',').map((s) => s.trim().replace(/^https?:\/\//, '').replace(/\/+$/, '')).join(','));
  if (str(opts, 'name') === '') c.problem('name', 'must not be empty');
  const stateDir = str(opts, 'stateDir');
  c.creatableDir('state-dir', stateDir);
  c.parses('metrics-listen', str(opts, 'metricsListen'), parseListen);
  c.ip('advertise-address', str(opts, 'advertiseAddress'));
  // The agent reads the file at every start while the key names it.
  c.readableFile('join-token-file', str(opts, 'joinTokenFile'));
  for (const [host, settings] of Object.entries(config.registries)) c.readableFile(`registries.${host}.caFile`, settings.caFile);
  return c.problems;
}

/**
 * settleAgentConfig applies the config file to the parsed program and returns its sections;
 * on `--check-config` it checks everything, reports and exits 0 or 1; a bad file exits 2.
 */
export function settleAgentConfig(program: Command): AgentConfig {
  const result = applyConfigFile(program, { defaultFile: DEFAULT_AGENT_CONFIG_FILE, sections: AGENT_CONFIG_SECTIONS });
  const { config, problems } = agentSections(result);
  result.problems.push(...problems);
  const opts = program.opts();
  settleConfigOrExit(program.name(), result, opts.checkConfig === true ? () => checkAgentConfig(opts, config, result) : undefined);
  return config;
}
