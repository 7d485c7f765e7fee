/**
 * A local stand-in for Asana: its OAuth endpoints (app.asana.com/-/oauth_*) and the few API routes
 * the examples call, in Asana's wire format (`{ data: … }`, `{ errors: [{ message }] }`), so the
 * official `asana` SDK works against it with only `basePath` changed.
 */
import express, { type Request, type Response } from 'express';
import { OAuthStandIn, type Account, type StandInClient } from './oauth.js';

export interface AsanaTask {
  gid: string;
  name: string;
  notes: string;
  due_on: string | null;
  completed: boolean;
  assigneeEmail: string;
  workspaceGid: string;
}

export interface AsanaStandIn {
  /** Base URL: OAuth at `${url}/-/oauth_authorize`, the API at `${url}/api/1.0`. */
  url: string;
  oauth: OAuthStandIn;
  tasks: AsanaTask[];
  workspace: { gid: string; name: string };
  close(): Promise<void>;
}

const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);

/** Every account that signs in finds these tasks assigned to it, so a demo has something to show. */
export const DEMO_TASKS: Array<Pick<AsanaTask, 'name' | 'notes' | 'due_on'>> = [
  { name: 'Write the quarterly report', notes: 'Numbers from finance are in the shared folder.', due_on: day(2) },
  { name: 'Review the onboarding checklist', notes: 'Two new hires start Monday.', due_on: day(4) },
  { name: 'Book the team offsite venue', notes: 'Somewhere with a lake, ideally.', due_on: day(9) },
];

export async function startAsanaStandIn(options: { clients?: StandInClient[]; port?: number } = {}): Promise<AsanaStandIn> {
  const oauth = new OAuthStandIn(
    {
      name: 'Asana',
      paths: { authorize: '/-/oauth_authorize', token: '/-/oauth_token', revoke: '/-/oauth_revoke' },
      accessTokenTtlSeconds: 3600,
      sendsIss: false,
      scopes: ['default', 'tasks:read', 'tasks:write', 'projects:read', 'users:read'],
      // Asana issues a refresh token on every code exchange; refreshes do not rotate it.
      issuesRefreshToken: () => true,
      // Asana's token response: lower-case token_type, no scope, and the user as `data`.
      tokenResponse: ({ scope: _scope, ...body }, { account }) => ({
        ...body,
        token_type: 'bearer',
        data: { id: Number(account.id), gid: account.id, name: account.name, email: account.email },
      }),
    },
    options.clients,
  );
  const workspace = { gid: '1200000000000001', name: 'Demo Workspace' };
  const tasks: AsanaTask[] = [];
  let nextGid = 1300000000000001n;

  /** Seeds the demo tasks the first time an account is seen. */
  const tasksOf = (account: Account) => {
    if (!tasks.some((t) => t.assigneeEmail === account.email)) {
      for (const t of DEMO_TASKS)
        tasks.push({ ...t, gid: String(nextGid++), completed: false, assigneeEmail: account.email, workspaceGid: workspace.gid });
    }
    return tasks.filter((t) => t.assigneeEmail === account.email);
  };

  const app = express();
  app.disable('x-powered-by');
  oauth.routes(app);

  const api = express.Router();
  const errors = (res: Response, status: number, message: string) =>
    void res.status(status).json({
      errors: [
        {
          message,
          help: 'For more information on API status codes and how to handle them, read the docs on errors: https://developers.asana.com/docs/errors',
        },
      ],
    });
  api.use(async (req, res, next) => {
    const grant = await oauth.authenticate(req);
    if (!grant) return errors(res, 401, 'Not Authorized');
    res.locals.account = grant.account;
    res.locals.scope = grant.scope;
    next();
  });

  const user = (a: Account) => ({
    gid: a.id,
    email: a.email,
    name: a.name,
    photo: null,
    resource_type: 'user',
    workspaces: [{ gid: workspace.gid, name: workspace.name, resource_type: 'workspace' }],
  });
  const full = (task: AsanaTask): Record<string, unknown> => ({
    gid: task.gid,
    resource_type: 'task',
    resource_subtype: 'default_task',
    name: task.name,
    notes: task.notes,
    due_on: task.due_on,
    completed: task.completed,
    workspace: { gid: task.workspaceGid, resource_type: 'workspace', name: workspace.name },
  });
  /** Asana returns the default record, or `gid` plus exactly the `opt_fields` asked for. */
  const shape = (task: AsanaTask, req: Request, standard: Record<string, unknown>) => {
    const fields = String(req.query.opt_fields ?? '')
      .split(',')
      .map((f) => f.trim())
      .filter(Boolean);
    if (fields.length === 0) return standard;
    const record = full(task);
    return Object.fromEntries([['gid', task.gid], ...fields.filter((f) => f in record).map((f) => [f, record[f]])]);
  };

  api.get('/users/:gid', (req, res) => {
    const account = res.locals.account as Account;
    if (req.params.gid !== 'me' && req.params.gid !== account.id && req.params.gid !== account.email)
      return errors(res, 404, 'user: Not Found');
    res.json({ data: user(account) });
  });
  api.get(
    '/workspaces',
    (_req, res) => void res.json({ data: [{ gid: workspace.gid, name: workspace.name, resource_type: 'workspace' }], next_page: null }),
  );
  api.get('/tasks', (req, res) => {
    const account = res.locals.account as Account;
    const { assignee, workspace: ws } = req.query as Record<string, string | undefined>;
    if (!assignee || !ws)
      return errors(res, 400, 'Must specify exactly one of project, tag, section, user task list, or assignee + workspace');
    if (ws !== workspace.gid) return errors(res, 404, 'workspace: Not Found');
    const mine = assignee === 'me' || assignee === account.id || assignee === account.email ? tasksOf(account) : [];
    res.json({
      data: mine.map((t) => shape(t, req, { gid: t.gid, name: t.name, resource_type: 'task', resource_subtype: 'default_task' })),
      next_page: null,
    });
  });
  api.get('/tasks/:gid', (req, res) => {
    const account = res.locals.account as Account;
    const task = tasksOf(account).find((t) => t.gid === req.params.gid);
    if (!task) return errors(res, 404, 'task: Not Found');
    res.json({ data: shape(task, req, full(task)) });
  });
  // OpenID Connect userinfo: only with the openid scope, like Asana.
  api.get('/openid_connect/userinfo', (_req, res) => {
    const account = res.locals.account as Account;
    const scope = res.locals.scope as string[];
    if (!scope.includes('openid')) return errors(res, 403, 'The openid scope is required.');
    res.json({
      sub: account.id,
      ...(scope.includes('email') ? { email: account.email } : {}),
      ...(scope.includes('profile') ? { name: account.name, picture: null } : {}),
    });
  });
  app.use('/api/1.0', api);

  const listening = await oauth.listen(app, options.port);
  return { url: listening.url, oauth, tasks, workspace, close: listening.close };
}
