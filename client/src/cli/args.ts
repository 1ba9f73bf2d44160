/** Thrown for wrong command lines: printed with the usage, exit code 2. */
export class UsageError extends Error {}

export interface ParsedArgs {
  positional: string[];
  /** Flags with values; repeated flags keep every value. */
  values: Map<string, string[]>;
  flags: Set<string>;
}

/**
 * A small parser for `--name value`, `--name=value` and boolean `--flag`. `valued` lists the flags that
 * take a value; anything else starting with `-` is an error, so typos never pass silently.
 */
export function parseArgs(args: string[], valued: string[], booleans: string[]): ParsedArgs {
  const out: ParsedArgs = { positional: [], values: new Map(), flags: new Set() };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') {
      out.positional.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      out.positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (valued.includes(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : args[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value.`);
      out.values.set(name, [...(out.values.get(name) ?? []), v]);
    } else if (booleans.includes(name) && eq < 0) {
      out.flags.add(name);
    } else {
      throw new UsageError(`Unknown option \`${name}\`.`);
    }
  }
  return out;
}

export function one(args: ParsedArgs, name: string): string | undefined {
  const v = args.values.get(name);
  return v ? v[v.length - 1] : undefined;
}

export function intOption(args: ParsedArgs, name: string): number | undefined {
  const v = one(args, name);
  if (v === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(v)) throw new UsageError(`${name} takes a positive whole number, not \`${v}\`.`);
  return Number(v);
}
