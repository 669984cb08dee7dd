// A real OpenID Connect provider on 127.0.0.1 for the social-login end-to-end test.
//
//   node provider.js <port> <redirect_uri>[,<redirect_uri>...] [--exit-after-authorization]
//                    [--backchannel-logout-uri=<url> [--backchannel-logout-session-required]]
//
// With --backchannel-logout-uri the client is registered for OpenID Connect Back-Channel Logout:
// ending the session at the provider (/session/end) POSTs a logout token there. With
// --backchannel-logout-session-required too, ID tokens and logout tokens carry the provider's
// session id (`sid`), so the client can end exactly the session that signed in there.
// With --exit-after-authorization the provider stops as soon as it has sent the browser back
// with a code: the client's token request then finds nobody, as when a provider goes down.
//
// One static client; every login name is an account whose claims are fixed below, so the test
// knows what the provider will say. oidc-provider's development interactions (a login form that
// accepts any name, and a consent form) stand in for a real provider's pages. A `nonce` sent with
// the authorization request is echoed into the ID token (oidc-provider does that by itself).
import { existsSync, readFileSync } from "node:fs";
import Provider from "oidc-provider";

// Login names whose claims differ from the default person's: what a provider may send that the
// vault cannot use as it is.
const VARIANTS = {
  // An internationalized address (RFC 6531): non-ASCII before the @.
  zoe: {
    email: "zoë.ångström@example.test",
    name: "Zoë Ångström",
    given_name: "Zoë",
    family_name: "Ångström",
  },
  // A given name longer than the profile field allows (100 characters).
  longname: { given_name: "Wolfeschlegelsteinhausenbergerdorff".repeat(4) },
};

// Claims changed "at the provider" between logins and refreshes: a JSON file of
// {login: {claim: value}}, read at every look-up, named by OIDC_CLAIMS_FILE (the refresh tests).
function changedClaims(sub) {
  const file = process.env.OIDC_CLAIMS_FILE;
  if (!file || !existsSync(file)) return {};
  return JSON.parse(readFileSync(file, "utf8"))[sub] || {};
}

const [port, redirects, ...options] = process.argv.slice(2);
const mode = options.find((option) => option === "--exit-after-authorization");
const backchannel = options.find((option) => option.startsWith("--backchannel-logout-uri="));
const sessionRequired = options.includes("--backchannel-logout-session-required");
if (!port || !redirects) {
  console.error("usage: node provider.js <port> <redirect_uri>[,<redirect_uri>...] [--exit-after-authorization]");
  process.exit(2);
}

export const CLIENT = { id: "vault-e2e", secret: "vault-e2e-client-secret" };

const configuration = {
  clients: [
    {
      client_id: CLIENT.id,
      client_secret: CLIENT.secret,
      redirect_uris: redirects.split(","),
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post",
      ...(backchannel
        ? {
            backchannel_logout_uri: backchannel.split("=").slice(1).join("="),
            backchannel_logout_session_required: sessionRequired,
          }
        : {}),
    },
  ],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "given_name", "family_name", "birthdate"],
  },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          email: `${sub}@oidc.example`,
          email_verified: true,
          name: "Marguerite Oidcperson",
          given_name: "Marguerite",
          family_name: "Oidcperson",
          birthdate: "1984-11-23",
          ...(VARIANTS[sub] || {}),
          ...changedClaims(sub),
        };
      },
    };
  },
  // A refresh token for every code grant, so the test sees one sealed.
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed("refresh_token");
  },
  // Revocation (RFC 7009) stands in for the person withdrawing the grant at the provider.
  features: { devInteractions: { enabled: true }, backchannelLogout: { enabled: true }, revocation: { enabled: true } },
  cookies: { keys: ["vault-e2e-cookie-key-not-a-secret"] },
  // oidc-provider's own requests (the back-channel logout POST) refuse loopback addresses as a
  // guard against SSRF; here the relying party is the test's live server on 127.0.0.1.
  async fetch(url, options) {
    if (["127.0.0.1", "localhost"].includes(new URL(url).hostname)) delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
};

const provider = new Provider(`http://127.0.0.1:${port}`, configuration);
provider.on("server_error", (ctx, error) => console.error("server_error", error));
provider.on("backchannel.success", (ctx, client) => console.log(`backchannel logout sent to ${client.clientId}`));
provider.on("backchannel.error", (ctx, error) => console.error("backchannel.error", error.message, error.cause?.code ?? ""));
if (mode === "--exit-after-authorization") {
  provider.on("authorization.success", (ctx) => {
    ctx.res.once("finish", () => {
      console.log("authorization sent; stopping as asked");
      process.exit(0);
    });
  });
}
provider.listen(Number(port), "127.0.0.1", () => {
  console.log(`oidc-provider listening on http://127.0.0.1:${port}`);
});
