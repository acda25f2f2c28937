package sessions

// OnExpire sets the function called with the id and owner of every session
// the reaper removes after its idle timeout (the audit trail's hook). It is
// called from the reaper's goroutine and must not block; nil removes it.
func (s *Store) OnExpire(f func(id, userID string)) {
	if f == nil {
		s.onExpire.Store(nil)
		return
	}
	s.onExpire.Store(&f)
}

// expired calls the OnExpire function, if any.
func (s *Store) expired(id, userID string) {
	if f := s.onExpire.Load(); f != nil {
		(*f)(id, userID)
	}
}
