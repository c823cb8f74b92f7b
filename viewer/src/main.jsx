// The hdf5-async viewer: h5web's App on the server's h5grove API (/api),
// opened on the file the server serves (its name comes from /health), or
// on the page's ?file=NAME (a file under the server's data_root).
// Live: every `refresh` seconds (the page's ?refresh=N, default 2, 0 = off)
// the data provider is made anew (H5GroveProvider's resetKeys), so new
// datasets and new rows appear without reloading the page; the selected
// dataset stays selected. A token (servers with auth_file) is taken from
// the page's #token=... once and kept in sessionStorage.
import { App, H5GroveProvider, createBasicFetcher } from '@h5web/app';
import '@h5web/app/styles.css';
import React, { useEffect, useMemo, useState } from 'react';
import { createRoot } from 'react-dom/client';

const params = new URLSearchParams(window.location.search);
const refreshSeconds = Number(params.get('refresh') ?? '2');
const askedFile = params.get('file');
const apiURL = new URL('api', window.location.href).href;
const healthURL = new URL('health', window.location.href).href;

function takeToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (m) {
    sessionStorage.setItem('hdf5-async-token', decodeURIComponent(m[1]));
    history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  return sessionStorage.getItem('hdf5-async-token');
}

function TokenForm({ onToken, message }) {
  const [value, setValue] = useState('');
  return (
    <form
      className="h5a-token"
      onSubmit={(e) => {
        e.preventDefault();
        sessionStorage.setItem('hdf5-async-token', value);
        onToken(value);
      }}
    >
      <h2>This server needs a token</h2>
      <p>{message}</p>
      <input type="password" value={value} onChange={(e) => setValue(e.target.value)} size={50} />{' '}
      <button type="submit">Open</button>
    </form>
  );
}

function Viewer() {
  const [token, setToken] = useState(takeToken);
  const [file, setFile] = useState(null);
  const [error, setError] = useState(null);
  const [key, setKey] = useState(0);
  const [live, setLive] = useState(refreshSeconds > 0);

  const headers = useMemo(() => (token ? { Authorization: `Bearer ${token}` } : {}), [token]);
  const fetcher = useMemo(() => createBasicFetcher({ headers }), [headers]);

  useEffect(() => {
    if (askedFile) {
      setFile(askedFile);
      return;
    }
    fetch(healthURL)
      .then((r) => r.json())
      .then((h) => setFile(h.file))
      .catch((e) => setError(String(e)));
  }, []);
  useEffect(() => {
    fetch(`${apiURL}/`, { headers }).then((r) => {
      if (r.status === 401 || r.status === 403) {
        r.json().then((j) => setError(j.message));
      } else {
        setError(null);
      }
    });
  }, [headers]);
  useEffect(() => {
    if (!live || refreshSeconds <= 0) return undefined;
    const t = setInterval(() => setKey((k) => k + 1), refreshSeconds * 1000);
    return () => clearInterval(t);
  }, [live]);

  if (error && /token|Unauthorized/i.test(error)) {
    return <TokenForm onToken={setToken} message={error} />;
  }
  if (error) return <p className="h5a-token">{error}</p>;
  if (!file) return <p className="h5a-token">Connecting...</p>;
  return (
    <div className="h5a-root">
      <div className="h5a-bar">
        <span>hdf5-async</span>
        <span className="h5a-file">{file}</span>
        <button type="button" onClick={() => setKey((k) => k + 1)}>
          Refresh
        </button>
        {refreshSeconds > 0 && (
          <button type="button" data-testid="live" onClick={() => setLive(!live)}>
            {live ? `Live (every ${refreshSeconds} s): pause` : 'Paused: go live'}
          </button>
        )}
      </div>
      <div className="h5a-main">
        <H5GroveProvider url={apiURL} filepath={file} resetKeys={[key]} fetcher={fetcher}>
          <App />
        </H5GroveProvider>
      </div>
    </div>
  );
}

createRoot(document.getElementById('root')).render(<Viewer />);
