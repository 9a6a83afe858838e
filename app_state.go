package runnel

// State is an application's lifecycle state (Kafka Streams'
// KafkaStreams.State):
//
//	Created → Rebalancing ⇄ Running → PendingShutdown → NotRunning
//	                  ↘        ↙
//	                    Error
//
// Rebalancing lasts while tasks are being assigned and their stores
// restored; Running means every assigned task is restored and processing.
// Error is final: processing stopped with an error (Err says which).
type State int32

// The application states.
const (
	Created State = iota
	Rebalancing
	Running
	PendingShutdown
	NotRunning
	Error
)

var stateNames = [...]string{"CREATED", "REBALANCING", "RUNNING", "PENDING_SHUTDOWN", "NOT_RUNNING", "ERROR"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "UNKNOWN"
}

// State returns the application's current state.
func (a *App) State() State { return State(a.state.Load()) }

// setState moves the application to s and tells the listener. Error and
// NotRunning are final: later changes are ignored. Moving to Running
// needs the state to be Rebalancing, so that a late report from the
// processing goroutine cannot undo a shutdown.
func (a *App) setState(s State) {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	a.setStateLocked(s)
}

// workerSettling says worker w acts on a new assignment (or is being
// replaced): the application is Rebalancing until every worker settles.
func (a *App) workerSettling(w int) {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	if a.settling == nil {
		a.settling = map[int]bool{}
	}
	a.settling[w] = true
	a.setStateLocked(Rebalancing)
}

// workerSettled says worker w runs all its tasks, restored; the
// application is Running once no worker is settling.
func (a *App) workerSettled(w int) {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	delete(a.settling, w)
	if len(a.settling) == 0 {
		a.setStateLocked(Running)
	}
}

// setStateLocked is setState with stateMu held.
func (a *App) setStateLocked(s State) {
	old := a.State()
	if old == s || old == Error || old == NotRunning {
		return
	}
	if s == Running && old != Rebalancing {
		return
	}
	if s == Rebalancing && old == PendingShutdown {
		return
	}
	a.state.Store(int32(s))
	a.opts.Logger.Info("runnel: state "+s.String(), "from", old.String())
	if p := a.metrics.prom; p != nil {
		p.state.WithLabelValues(old.String()).Set(0)
		p.state.WithLabelValues(s.String()).Set(1)
	}
	if fn := a.opts.StateListener; fn != nil {
		fn(old, s)
	}
}
