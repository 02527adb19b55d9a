// Finding the server programs the tests start (installed from Debian by scripts/install-servers.sh).
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The executable `name` on PATH or in `extraDirs` (Debian puts daemons in /usr/sbin), or null. */
export function findExecutable(name: string, extraDirs: readonly string[] = ['/usr/bin', '/usr/sbin', '/sbin']): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((dir) => dir.length > 0), ...extraDirs];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}
