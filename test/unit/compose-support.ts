/**
 * Helpers for the compose unit tests: convert a compose text written into a fresh directory
 * (with any files beside it) the way `berth compose convert` does, without the CLI around it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Diagnostics, unsupportedLine } from '../../control-plane/cli/compose/diagnostics.js';
import { loadCompose } from '../../control-plane/cli/compose/load.js';
import { convertProject, type ComposeObject } from '../../control-plane/cli/compose/project.js';
import type { ServiceObject } from '../../control-plane/cli/compose/service.js';

/** Conversion is what one conversion produced: the objects, the findings as printed lines, and the directory used. */
export interface Conversion {
  objects: ComposeObject[];
  errors: string[];
  unsupported: string[];
  notes: string[];
  dir: string;
}

/** ComposeScratch owns one temporary directory for a test file's conversions; remove() deletes it. */
export class ComposeScratch {
  readonly root = mkdtempSync(join(tmpdir(), 'berth-compose-'));
  private n = 0;

  /** convert writes text as compose.yaml into a new project directory with files beside it, and converts it. */
  convert(text: string, opts: { files?: Record<string, string | Buffer>; env?: Record<string, string>; namespace?: string; project?: string } = {}): Conversion {
    this.n += 1;
    const dir = join(this.root, `${this.n}`, opts.project ?? 'proj');
    mkdirSync(dir, { recursive: true });
    for (const [name, content] of Object.entries(opts.files ?? {})) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), content);
    }
    const file = join(dir, 'compose.yaml');
    writeFileSync(file, text);
    const diag = new Diagnostics();
    const project = loadCompose(text, file, opts.env ?? {}, diag);
    const objects = project ? convertProject(project, opts.namespace ?? project.name, diag) : [];
    return { objects, errors: diag.errors, unsupported: diag.unsupported.map((u) => unsupportedLine(u)), notes: diag.notes, dir };
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** serviceOf finds the Service named name among objects, or throws naming what there is. */
export function serviceOf(objects: readonly ComposeObject[], name: string): ServiceObject {
  const s = objects.find((o): o is ServiceObject => o.kind === 'Service' && o.metadata.name === name);
  if (!s) throw new Error(`expected a Service ${name}, saw ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ') || 'nothing'}`);
  return s;
}

/** oneService builds a compose text with one service `s` (image img) and the given YAML lines under it. */
export function oneService(lines: string, top = ''): string {
  const body = lines.split('\n').filter((l) => l !== '').map((l) => `    ${l}`).join('\n');
  return `services:\n  s:\n    image: img\n${body}\n${top}`;
}
