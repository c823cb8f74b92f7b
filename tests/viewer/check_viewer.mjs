// Drives headless Chromium (Debian's /usr/bin/chromium) through
// playwright-core on the viewer the server serves at URL (argv[2]):
// prints TREE_OK once the explorer shows the file's groups, waits for a
// line on stdin (the test appended a dataset through the main port), prints
// NEW_OK once the new dataset is in the tree without a reload, selects the
// dataset named by argv[4] so that h5web plots it, and saves a screenshot
// to argv[3]. Run by tests/integration/test_http_viewer.py.
import { createInterface } from 'node:readline';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const [url, shot, plotName, viewerDir] = process.argv.slice(2);
// playwright-core from viewer/node_modules (where `make viewer` put it)
const { chromium } = createRequire(join(viewerDir, 'package.json'))('playwright-core');
const userDataDir = mkdtempSync(join(tmpdir(), 'h5a-chromium-'));
const ctx = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));
try {
  const page = await ctx.newPage();
  await page.goto(url);
  await page.getByRole('treeitem', { name: 'entry' }).waitFor({ timeout: 60000 });
  console.log('TREE_OK');
  await nextLine();
  await page.getByRole('treeitem', { name: 'new_data' }).waitFor({ timeout: 60000 });
  console.log('NEW_OK');
  await page.getByRole('treeitem', { name: 'entry' }).click(); // expand it
  await page.getByRole('treeitem', { name: plotName }).click();
  await page.locator('canvas').first().waitFor({ timeout: 60000 });
  await page.screenshot({ path: shot });
  console.log('SHOT_OK');
} finally {
  await ctx.close();
  lines.close();
}
