// Entry point that MockTestRunner runs in a child Node process: it loads the task handler with
// the mocked task library and the inputs of one scenario. Service connections and variables
// reach the handler as environment variables, the way the agent passes them.
const path = require('path');
const { TaskMockRunner } = require('azure-pipelines-task-lib/mock-run');

const scenario = JSON.parse(process.env.MIDCORE_TASK_SCENARIO || '{}');
const handler = path.resolve(__dirname, '..', '..', '..', 'azure', 'devops-task', 'midcore-sign', 'index.js');
const runner = new TaskMockRunner(handler);
for (const [name, value] of Object.entries(scenario.inputs || {})) {
  runner.setInput(name, value);
}
// The mock resolves only `which`, and the scenarios give explicit tool paths.
runner.setAnswers({ which: scenario.which || {} });
runner.run();
