export { ECS_VERSION, contextColumns, ecsTarget, severityOf, toEcs } from './ecs.js';
export type { EcsAlert, EcsContext, FlaggedFlow } from './ecs.js';
export { openAlertSink, parseAlertTarget } from './sinks.js';
export type { AlertSink, AlertTarget, OpenSinkOptions } from './sinks.js';
export { createSyslogSender, formatSyslog, parseSyslogUrl, syslogSeverity } from './syslog.js';
export type { SyslogOptions, SyslogSender, SyslogTarget } from './syslog.js';
export { openDetectIo } from './detect-wiring.js';
export type { DetectIo, DetectIoOptions } from './detect-wiring.js';
