// A small evaluator for the GitHub Actions expression syntax that action.yml files use:
// literals, context property access (`inputs.client-id`, `steps.sign.outputs.key-id`),
// `!`, `==`, `!=`, `&&`, `||`, parentheses and the status functions success(), failure(),
// always() and cancelled(). Semantics follow the GitHub documentation for expressions:
// `&&`/`||` return an operand, string comparison ignores case, and '', 0, null and false
// are falsy. Anything else (other functions, indexing, filters) raises an error, so an
// action that starts to use it fails the harness instead of being evaluated wrongly.

const TOKEN = /\s*(?:(\d+(?:\.\d+)?)|'((?:[^']|'')*)'|(==|!=|&&|\|\||!|\(|\)|\.|,)|([A-Za-z_][A-Za-z0-9_-]*))/y;

function tokenize(source) {
  const tokens = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < source.length) {
    if (/^\s*$/.test(source.slice(TOKEN.lastIndex))) break;
    const start = TOKEN.lastIndex;
    const match = TOKEN.exec(source);
    if (!match) {
      throw new Error(`unsupported expression syntax at offset ${start} in: ${source}`);
    }
    if (match[1] !== undefined) tokens.push({ kind: 'literal', value: Number(match[1]) });
    else if (match[2] !== undefined) tokens.push({ kind: 'literal', value: match[2].replace(/''/g, "'") });
    else if (match[3] !== undefined) tokens.push({ kind: 'op', value: match[3] });
    else tokens.push({ kind: 'name', value: match[4] });
  }
  return tokens;
}

export function isTruthy(value) {
  return !(value === '' || value === 0 || value === null || value === undefined || value === false);
}

function coerceForComparison(value) {
  return typeof value === 'string' ? value.toLowerCase() : value;
}

/** Evaluates one expression (the text between `${{` and `}}`) against `context`. */
export function evaluate(source, context) {
  const tokens = tokenize(source);
  let position = 0;

  const peek = () => tokens[position];
  const take = (value) => {
    const token = tokens[position];
    if (!token || token.value !== value) {
      throw new Error(`expected '${value}' in expression: ${source}`);
    }
    position += 1;
  };

  function parseOr() {
    let left = parseAnd();
    while (peek()?.value === '||') {
      position += 1;
      const right = parseAnd();
      left = isTruthy(left) ? left : right;
    }
    return left;
  }

  function parseAnd() {
    let left = parseEquality();
    while (peek()?.value === '&&') {
      position += 1;
      const right = parseEquality();
      left = isTruthy(left) ? right : left;
    }
    return left;
  }

  function parseEquality() {
    let left = parseUnary();
    while (peek()?.value === '==' || peek()?.value === '!=') {
      const operator = tokens[position].value;
      position += 1;
      const right = parseUnary();
      const equal = coerceForComparison(left ?? null) === coerceForComparison(right ?? null);
      left = operator === '==' ? equal : !equal;
    }
    return left;
  }

  function parseUnary() {
    if (peek()?.value === '!') {
      position += 1;
      return !isTruthy(parseUnary());
    }
    return parsePrimary();
  }

  function parsePrimary() {
    const token = tokens[position];
    if (!token) throw new Error(`unexpected end of expression: ${source}`);
    position += 1;
    if (token.kind === 'literal') return token.value;
    if (token.value === '(') {
      const value = parseOr();
      take(')');
      return value;
    }
    if (token.kind !== 'name') throw new Error(`unexpected '${token.value}' in expression: ${source}`);
    if (token.value === 'true') return true;
    if (token.value === 'false') return false;
    if (token.value === 'null') return null;
    if (peek()?.value === '(') {
      if (!['success', 'failure', 'always', 'cancelled'].includes(token.value)) {
        throw new Error(`unsupported function ${token.value}() in expression: ${source}`);
      }
      take('(');
      take(')');
      const status = context.status ?? 'success';
      switch (token.value) {
        case 'success': return status === 'success';
        case 'failure': return status === 'failure';
        case 'always': return true;
        default: return false; // cancelled(): the harness never cancels a run.
      }
    }
    if (!Object.hasOwn(context.values, token.value)) {
      throw new Error(`unknown context '${token.value}' in expression: ${source}`);
    }
    let value = context.values[token.value];
    while (peek()?.value === '.') {
      position += 1;
      const property = tokens[position];
      if (!property || property.kind !== 'name') throw new Error(`expected a property name in expression: ${source}`);
      position += 1;
      value = value !== null && typeof value === 'object' && Object.hasOwn(value, property.value)
        ? value[property.value]
        : null;
    }
    return value;
  }

  const result = parseOr();
  if (position !== tokens.length) {
    throw new Error(`unexpected '${tokens[position].value}' in expression: ${source}`);
  }
  return result;
}

/** Replaces every `${{ ... }}` in `text` with the string form of its value. */
export function interpolate(text, context) {
  if (typeof text !== 'string') return text;
  return text.replace(/\$\{\{(.*?)\}\}/gs, (_, expression) => {
    const value = evaluate(expression, context);
    if (value === null || value === undefined) return '';
    return typeof value === 'object' ? JSON.stringify(value) : String(value);
  });
}

/** Evaluates an `if:` condition, which may be written with or without `${{ }}`. */
export function evaluateCondition(condition, context) {
  if (condition === undefined || condition === null) return evaluate('success()', context);
  if (typeof condition === 'boolean') return condition;
  const text = String(condition).trim();
  const inner = text.startsWith('${{') && text.endsWith('}}') ? text.slice(3, -2) : text;
  // GitHub adds an implicit success() unless the condition calls a status function.
  const hasStatus = /\b(success|failure|always|cancelled)\s*\(/.test(inner);
  const value = isTruthy(evaluate(inner, context));
  return hasStatus ? value : value && evaluate('success()', context);
}
