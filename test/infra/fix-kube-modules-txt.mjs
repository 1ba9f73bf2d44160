// Rewrites Kubernetes 1.20's vendor/modules.txt for Go >= 1.17 (used by install-kube.sh).
// Go 1.15 wrote package lines under wildcard replacement headers ("# mod => other vX"); newer Go
// only attributes packages listed under a versioned header ("# mod vX [=> ...]") and otherwise fails
// with "updates to go.mod needed". Each package line moves under the versioned header of the module
// that owns it (longest path prefix); wildcard headers stay, without packages.
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node fix-kube-modules-txt.mjs <vendor/modules.txt>');
  process.exit(2);
}
const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
const versioned = []; // { path, header, markers: [], packages: [] }
const wildcards = [];
const packages = [];
let current = null;
for (const line of lines) {
  if (line.startsWith('## ')) {
    if (current) current.markers.push(line);
    continue;
  }
  if (line.startsWith('# ')) {
    const [path, second] = line.slice(2).split(' ');
    if (second && second !== '=>') {
      current = { path, header: line, markers: [], packages: [] };
      versioned.push(current);
    } else {
      current = null;
      wildcards.push(line);
    }
    continue;
  }
  packages.push(line);
}
const byPath = new Map(versioned.map((m) => [m.path, m]));
let unowned = 0;
for (const pkg of packages) {
  let owner;
  for (let p = pkg; ; p = p.slice(0, p.lastIndexOf('/'))) {
    owner = byPath.get(p);
    if (owner || !p.includes('/')) break;
  }
  if (!owner) {
    unowned++;
    console.error(`no versioned module owns package ${pkg}`);
    continue;
  }
  owner.packages.push(pkg);
}
if (unowned > 0) process.exit(1);
const out = [];
for (const m of versioned) out.push(m.header, ...m.markers, ...m.packages);
out.push(...wildcards);
writeFileSync(file, out.join('\n') + '\n');
console.error(`modules.txt: ${versioned.length} modules, ${packages.length} packages, ${wildcards.length} wildcard headers`);
