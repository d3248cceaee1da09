// The reference provider for scripts/bench: oidc-provider (npm) on 127.0.0.1, one confidential client
// with the client_credentials grant, introspection on. Prints `ready <port>` once listening.
//   node bench-oidc-provider.mjs <port>      (run from the folder holding node_modules/oidc-provider)
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'bench',
    client_secret: 'bench-secret-bench-secret-bench-secret',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`ready ${port}`));
