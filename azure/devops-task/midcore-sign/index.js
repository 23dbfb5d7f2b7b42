'use strict';
// Azure DevOps task: signs a Midcore bundle through Azure Key Vault with the identity of an
// Azure Resource Manager service connection. It then runs the launch check against the public
// key exported from the vault, so a broken signature fails the pipeline before anything is
// published.
//
// The service connection reaches this process the way the agent passes it:
// ENDPOINT_AUTH_SCHEME_<id> and ENDPOINT_AUTH_PARAMETER_<id>_<NAME> (the task library moves
// them into its vault and out of process.env at start-up). Secrets go to the signer only in
// its child-process environment, after task.setsecret has registered them for masking.

const fs = require('fs');
const os = require('os');
const path = require('path');
const tl = require('azure-pipelines-task-lib/task');
const { ToolRunner } = require('azure-pipelines-task-lib/toolrunner');

/** An error whose message is the cause shown as the task's result. */
class TaskError extends Error {}

/** Reads the service connection and returns the signer's --auth mode and its environment. */
function credentialsFromConnection(connectionId) {
  const scheme = tl.getEndpointAuthorizationScheme(connectionId, true);
  if (!scheme) {
    throw new TaskError(`Service connection '${connectionId}' was not passed to the task (ENDPOINT_AUTH_SCHEME_${connectionId} is not set): check the azureSubscription input and that the pipeline may use the connection`);
  }
  const parameter = (name) => tl.getEndpointAuthorizationParameter(connectionId, name, true) || '';
  const tenantId = parameter('tenantid');
  const clientId = parameter('serviceprincipalid');
  if (!tenantId) throw new TaskError(`Service connection '${connectionId}' has no tenant id (authorization parameter tenantid)`);
  if (!clientId) throw new TaskError(`Service connection '${connectionId}' has no client id (authorization parameter serviceprincipalid)`);
  const identity = { AZURE_TENANT_ID: tenantId, AZURE_CLIENT_ID: clientId };

  switch (scheme.toLowerCase()) {
    case 'workloadidentityfederation': {
      const oidcRequestUri = tl.getVariable('System.OidcRequestUri');
      if (!oidcRequestUri) {
        throw new TaskError('System.OidcRequestUri is not set, so the agent cannot issue an OIDC token for workload identity federation: update the agent');
      }
      const accessToken = secretParameter('SystemVssConnection', 'AccessToken');
      if (!accessToken) {
        throw new TaskError('No job access token (System.AccessToken) is available to request the OIDC token: allow scripts to access the OAuth token for this job');
      }
      tl.setSecret(accessToken);
      return {
        auth: 'azure-pipelines',
        env: {
          ...identity,
          AZURE_SERVICE_CONNECTION_ID: connectionId,
          SYSTEM_OIDCREQUESTURI: oidcRequestUri,
          SYSTEM_ACCESSTOKEN: accessToken,
        },
      };
    }
    case 'serviceprincipal': {
      const authenticationType = parameter('authenticationType') || 'spnKey';
      if (authenticationType.toLowerCase() === 'spncertificate') {
        throw new TaskError(`Service connection '${connectionId}' uses a service-principal certificate, which the signer does not support: use workload identity federation or a client secret`);
      }
      if (authenticationType.toLowerCase() !== 'spnkey') {
        throw new TaskError(`Service connection '${connectionId}' has the unknown authenticationType '${authenticationType}': expected spnKey`);
      }
      const secret = secretParameter(connectionId, 'serviceprincipalkey');
      if (!secret) throw new TaskError(`Service connection '${connectionId}' has no client secret (authorization parameter serviceprincipalkey)`);
      tl.setSecret(secret);
      return { auth: 'client-secret', env: { ...identity, AZURE_CLIENT_SECRET: secret } };
    }
    default:
      throw new TaskError(`Service connection '${connectionId}' uses the authorization scheme '${scheme}', which the task does not support: use WorkloadIdentityFederation or ServicePrincipal`);
  }
}

/**
 * Reads a secret authorization parameter from the JSON form ENDPOINT_AUTH_<id>, which the
 * agent sets for every service connection. The per-parameter variable is never read: the
 * task library's accessor for it writes the value to the debug log before it can be masked.
 */
function secretParameter(connectionId, name) {
  const authorization = tl.getEndpointAuthorization(connectionId, true);
  const parameters = authorization && authorization.parameters ? authorization.parameters : {};
  const key = Object.keys(parameters).find((candidate) => candidate.toLowerCase() === name.toLowerCase());
  return key && parameters[key] ? parameters[key] : '';
}

/** Resolves a tool from its input, else from PATH. */
function resolveTool(inputName, toolName) {
  const inputPath = tl.getInput(inputName, false);
  if (inputPath) {
    if (!fs.existsSync(inputPath) || !fs.statSync(inputPath).isFile()) {
      throw new TaskError(`Input '${inputName}': no file at '${inputPath}'`);
    }
    return inputPath;
  }
  const found = tl.which(toolName, false);
  if (!found) {
    throw new TaskError(`Input '${inputName}' is empty and ${toolName} is not on PATH: install it on the agent or set ${inputName}`);
  }
  return found;
}

/**
 * Runs a tool with its output streamed to the log (so the agent receives the ##vso commands
 * the signer prints) and returns its exit code and stdout.
 */
async function run(toolPath, args, env) {
  const tool = new ToolRunner(toolPath);
  tool.arg(args);
  let stdout = '';
  tool.on('stdout', (data) => {
    stdout += data.toString();
  });
  const code = await tool.execAsync({ env, ignoreReturnCode: true, failOnStdErr: false });
  return { code, stdout };
}

/** Returns the last line of `text` that parses as a JSON object. */
function lastJsonObject(text) {
  const lines = text.split(/\r?\n/).reverse();
  for (const line of lines) {
    const trimmed = line.trim();
    if (!trimmed.startsWith('{')) continue;
    try {
      return JSON.parse(trimmed);
    } catch {
      // A log line that starts with '{' but is not the report; keep looking.
    }
  }
  return null;
}

async function main() {
  // 1. Inputs.
  const connectionId = tl.getInput('azureSubscription', true);
  const bundle = path.resolve(tl.getPathInput('bundle', true));
  const key = tl.getInput('key', true);
  const product = tl.getInput('product', false);
  const version = tl.getInput('version', false);
  if (!fs.existsSync(bundle) || !fs.statSync(bundle).isDirectory()) {
    throw new TaskError(`Input 'bundle': folder not found: ${bundle}`);
  }

  // 2. Credentials from the service connection, then the tools.
  const { auth, env: credentialEnv } = credentialsFromConnection(connectionId);
  const signer = resolveTool('signerPath', 'midcore-sign');
  const verifier = resolveTool('verifierPath', 'midcore-verify');
  const childEnv = { ...process.env, ...credentialEnv };

  // 3. Sign. The signer reports its own failures as task.logissue and sets its outputs.
  const signArgs = ['sign', bundle, '--key', key, '--auth', auth, '--json'];
  if (product) signArgs.push('--product', product);
  if (version) signArgs.push('--version', version);
  const signed = await run(signer, signArgs, childEnv);
  if (signed.code !== 0) {
    throw new TaskError(`midcore-sign failed with exit code ${signed.code} while signing ${bundle} with ${key}; the issues above name the cause`);
  }
  const report = lastJsonObject(signed.stdout);
  if (!report || typeof report.manifest !== 'string' || typeof report.key_id !== 'string') {
    throw new TaskError('midcore-sign exited 0 but printed no JSON report with manifest and key_id');
  }
  tl.setVariable('manifest', report.manifest, false, true);
  tl.setVariable('keyId', report.key_id, false, true);

  // 4. Launch check, trusting only the key exported from the vault.
  const tempRoot = tl.getVariable('Agent.TempDirectory') || os.tmpdir();
  const workDir = fs.mkdtempSync(path.join(tempRoot, 'midcore-verify-'));
  const publicKey = path.join(workDir, 'vault-public.pem');
  const exported = await run(signer, ['key', 'export-public', '--key', key, '--auth', auth, '--out', publicKey], childEnv);
  if (exported.code !== 0) {
    throw new TaskError(`midcore-sign key export-public failed with exit code ${exported.code} for ${key}; the issues above name the cause`);
  }
  // The launch check needs no credentials, so it gets none.
  const verifierEnv = { ...process.env };
  for (const name of Object.keys(credentialEnv)) delete verifierEnv[name];
  const verified = await run(verifier, ['launch', bundle, '--trust', publicKey, '--mode', 'full'], verifierEnv);
  if (verified.code !== 0) {
    throw new TaskError(`Launch check failed (midcore-verify exit code ${verified.code}): ${bundle} does not verify with the vault key ${report.key_id}`);
  }

  tl.setResult(tl.TaskResult.Succeeded, `Signed ${report.files} files in ${bundle} with ${report.key_id}; the launch check passed`);
}

main().catch((error) => {
  // Errors from the task library (a missing required input, say) already name the cause.
  const message = error instanceof Error ? error.message : `Unexpected error: ${error}`;
  tl.setResult(tl.TaskResult.Failed, message);
});
