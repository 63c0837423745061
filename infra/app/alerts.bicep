// Log search alert rules over Application Insights, and an optional e-mail action group.
//
// The queries read the telemetry names of docs/operations.md ("Telemetry names"): function
// invocations in `requests` (name = the function name), Junction's metrics in `customMetrics`
// (dimensions in customDimensions). Every rule exists whether or not an e-mail is given: without
// one, fired alerts are listed in the portal (Monitor > Alerts) and notify nobody.
//
// Cost: a log search alert rule is billed per rule by how often it runs, fired or not (docs/deploy.md,
// "What it costs at rest"), so only what stops callers now runs every 5 minutes. Windows are
// longer than the frequency, so telemetry that arrives a few minutes late is still counted;
// autoMitigate makes each alert stateful: it notifies once when it fires and resolves by itself.
// The rules run with Azure Monitor's own access to the component: no identity, no role
// assignment, and the app's managed identity gets nothing.

@description('Prefix of the rule names (alert-junction-<token>).')
param namePrefix string

@description('Azure region (the rules live beside the component they query).')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Name of the Application Insights component the rules query.')
param applicationInsightsName string

@description('Name of the action group created when alertEmail is set.')
param actionGroupName string

@description('Address that fired alerts are sent to; empty creates no action group (alerts show in the portal only).')
param alertEmail string = ''

@description('Fire when the oldest message of the run queue has waited longer than this many minutes.')
@minValue(1)
@maxValue(1440)
param queueAgeMinutes int = 10

@description('Fire when, in the last hour, more than this percentage of a scenario\'s runs failed (scenarios with at least 5 ended runs).')
@minValue(1)
@maxValue(100)
param failedRunPercent int = 10

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'junction'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// One entry per alert. `query` yields AggregatedValue (one row, or one row per scenario whose
// worst value the rule takes with timeAggregation Maximum); the rule fires when it is greater than
// `threshold`. Severity: 1 (Error) for what stops callers or runs now, 2 (Warning) for what lost or
// failed runs or may soon refuse callers. docs/operations.md says what to do for each.
var rules = [
  {
    name: 'poisoned-runs'
    displayName: 'Junction: run messages reached the poison queue'
    description: 'A run message reached <prefix>-runs-poison: its run failed all attempts or its last attempt never finished (crash, time-out). failPoisonedRun marks such a run failed and removes the message; a message still in the queue means that function is failing too. See docs/operations.md, Alerts.'
    severity: 2
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    timeAggregation: 'Total'
    threshold: 0
    query: '''
union
  (requests
  | where name == 'failPoisonedRun'
  | summarize AggregatedValue = sum(itemCount)),
  (customMetrics
  | where name == 'junction.queue.depth' and tostring(customDimensions['junction.queue']) == 'poison'
  | summarize AggregatedValue = max(value))
'''
  }
  {
    name: 'failed-runs'
    displayName: 'Junction: runs of a scenario are failing'
    description: 'In the last hour, more than the configured percentage (failedRunPercent) of the ended runs of a scenario with at least 5 ended runs failed. See docs/operations.md, Alerts.'
    severity: 2
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    timeAggregation: 'Maximum'
    threshold: failedRunPercent
    query: '''
customMetrics
| where name == 'junction.runs.ended'
| extend scenario = tostring(customDimensions['junction.scenario.id']), status = tostring(customDimensions['junction.run.status'])
| summarize ended = sum(value), failed = sumif(value, status == 'failed') by scenario
| where ended >= 5
| project AggregatedValue = 100.0 * failed / ended
'''
  }
  {
    name: 'http-5xx'
    displayName: 'Junction: HTTP 5xx rate above 5%'
    description: 'More than 5% of the HTTP requests of the last 15 minutes (at least 10) were answered 5xx: storage unavailable (503), deadlines (504), or processes of API operations failing (500). See docs/operations.md, Alerts.'
    severity: 1
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    timeAggregation: 'Maximum'
    threshold: 5
    query: '''
requests
| where toint(resultCode) >= 100
| summarize total = sum(itemCount), errors = sumif(itemCount, toint(resultCode) >= 500)
| where total >= 10
| project AggregatedValue = 100.0 * errors / total
'''
  }
  {
    name: 'run-queue-age'
    displayName: 'Junction: runs are waiting in the run queue'
    description: 'The oldest message of <prefix>-runs has waited longer than the configured minutes (queueAgeMinutes): runs are accepted but not started. See docs/operations.md, Alerts.'
    severity: 1
    evaluationFrequency: 'PT5M'
    windowSize: 'PT10M'
    timeAggregation: 'Maximum'
    threshold: queueAgeMinutes
    query: '''
customMetrics
| where name == 'junction.queue.oldest_age' and tostring(customDimensions['junction.queue']) == 'runs'
| summarize AggregatedValue = max(value) / 60.0
'''
  }
  {
    name: 'key-downloads'
    displayName: 'Junction: signing keys could not be downloaded'
    description: 'Junction could not download token signing keys: Azure AD (jwks) or an OpenID issuer of oauth2 API operations (oidc). Keys already known stay in use; a new instance without keys refuses those callers. See docs/operations.md, Alerts.'
    severity: 2
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    timeAggregation: 'Total'
    threshold: 0
    query: '''
customMetrics
| where name == 'junction.identity.failures'
| where tostring(customDimensions['junction.identity.kind']) in ('jwks', 'oidc')
| summarize AggregatedValue = sum(value)
'''
  }
]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in rules: {
  name: '${namePrefix}-${rule.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: rule.displayName
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: rule.evaluationFrequency
    windowSize: rule.windowSize
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: rule.timeAggregation
          metricMeasureColumn: 'AggregatedValue'
          operator: 'GreaterThan'
          threshold: rule.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: empty(alertEmail) ? [] : [
        actionGroup.id
      ]
    }
  }
}]
