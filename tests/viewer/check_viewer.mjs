// Drives headless Chromium (Debian's /usr/bin/chromium, WebGL through
// SwiftShader so that plots are drawn) through playwright-core on the
// viewer the server serves at URL (argv[2]): prints TREE_OK once the
// explorer shows the file's groups; waits for a line on stdin (the test
// appended rows to a new dataset through the main port) and prints NEW_OK
// once that dataset is in the tree, then selects it, shows its metadata
// (Inspect) and prints SHAPE_OK once the shape reads argv[5]; waits for
// another line (more rows appended) and prints ROWS_OK once the shape reads
// argv[6] and PLOT_OK once the plot (Display) fetched that many rows -- all
// without a reload (the viewer's live refresh). Then it plots the dataset
// named by argv[4] and saves a screenshot to argv[3] (SHOT_OK). Run by
// tests/integration/test_http_viewer.py (make viewer-shot: docs/viewer.png).
import { createInterface } from 'node:readline';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const [url, shot, plotName, viewerDir, shape1, shape2] = process.argv.slice(2);
// playwright-core from viewer/node_modules (where `make viewer` put it)
const { chromium } = createRequire(join(viewerDir, 'package.json'))('playwright-core');
const userDataDir = mkdtempSync(join(tmpdir(), 'h5a-chromium-'));
const ctx = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ['--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));
try {
  const page = await ctx.newPage();
  await page.goto(url);
  // h5web draws its plots with WebGL: without it (--disable-gpu, no
  // SwiftShader) the page works but every plot stays blank
  const webgl = await page.evaluate(() => !!document.createElement('canvas').getContext('webgl2'));
  if (!webgl) throw new Error('no WebGL in this Chromium: the plots would be blank');
  await page.getByRole('treeitem', { name: 'entry' }).waitFor({ timeout: 60000 });
  console.log('TREE_OK');
  await nextLine();
  await page.getByRole('treeitem', { name: 'new_data' }).waitFor({ timeout: 60000 });
  console.log('NEW_OK');
  // the metadata table's "Shape" row (h5web's EntityInfo)
  const shapeIs = (want) =>
    page.waitForFunction(
      (w) =>
        [...document.querySelectorAll('th')].some(
          (th) => th.textContent === 'Shape' && th.nextElementSibling?.textContent === w,
        ),
      want,
      { timeout: 60000 },
    );
  const modeBtn = (name) =>
    page.getByRole('tab', { name }).or(page.getByRole('radio', { name })).first();
  await page.getByRole('treeitem', { name: 'new_data' }).click();
  await modeBtn('Inspect').click();
  await shapeIs(shape1);
  console.log('SHAPE_OK');
  await nextLine();
  await shapeIs(shape2);
  console.log('ROWS_OK');
  // the plot gets the new rows too: /api/data of new_data with all of them
  const rows = Number(shape2);
  const plotted = page.waitForResponse(
    async (r) =>
      r.url().includes('/api/data') && r.url().includes('new_data') &&
      (await r.body()).length === rows * 8,
    { timeout: 60000 },
  );
  await modeBtn('Display').click();
  await plotted;
  await page.locator('canvas').first().waitFor({ timeout: 60000 });
  console.log('PLOT_OK');
  await page.getByRole('treeitem', { name: 'entry' }).click(); // expand it
  const shown = page.waitForResponse(
    (r) => r.url().includes('/api/data') && r.url().includes(plotName) && r.ok(),
    { timeout: 60000 },
  );
  await page.getByRole('treeitem', { name: plotName }).click();
  await shown;
  await page.locator('canvas').first().waitFor({ timeout: 60000 });
  // the plot is drawn in the next frames
  await page.evaluate(
    () => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))),
  );
  await page.screenshot({ path: shot });
  console.log('SHOT_OK');
} finally {
  await ctx.close();
  lines.close();
}
